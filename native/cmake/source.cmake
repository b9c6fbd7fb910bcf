# ggml and libllama built from node-llama-cpp's bundled llama.cpp sources, as shared libraries
# beside the addon. GPU options pass straight through to ggml.
set(BUILD_SHARED_LIBS ON CACHE BOOL "" FORCE)
set(LLAMA_BUILD_COMMON   OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TESTS    OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TOOLS    OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_SERVER   OFF CACHE BOOL "" FORCE)
set(LLAMA_CURL           OFF CACHE BOOL "" FORCE)
set(GGML_CUDA   ${PALI_CUDA}   CACHE BOOL "" FORCE)
set(GGML_METAL  ${PALI_METAL}  CACHE BOOL "" FORCE)
set(GGML_VULKAN ${PALI_VULKAN} CACHE BOOL "" FORCE)
# Tuned for the machine that builds it unless GGML_NATIVE=OFF is passed (e.g. for redistribution).
if (NOT DEFINED GGML_NATIVE)
    set(GGML_NATIVE ON CACHE BOOL "" FORCE)
endif()

set(CMAKE_LIBRARY_OUTPUT_DIRECTORY "${PALI_OUT_DIR}")
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY "${PALI_OUT_DIR}")
add_subdirectory("${PALI_LLAMA_DIR}" llama.cpp EXCLUDE_FROM_ALL)

# llama.cpp sends its binaries to its own bin/; ours must sit beside the addon.
foreach(target llama ggml ggml-base ggml-cpu ggml-blas ggml-cuda ggml-metal ggml-vulkan)
    if (TARGET ${target})
        set_target_properties(${target} PROPERTIES
            LIBRARY_OUTPUT_DIRECTORY "${PALI_OUT_DIR}"
            RUNTIME_OUTPUT_DIRECTORY "${PALI_OUT_DIR}")
    endif()
endforeach()

add_library(pali::llama ALIAS llama)
add_library(pali::ggml ALIAS ggml)
add_library(pali::ggml-base ALIAS ggml-base)
message(STATUS "pali: building llama.cpp ${PALI_LLAMA_TAG} from source (CUDA=${PALI_CUDA} Metal=${PALI_METAL} Vulkan=${PALI_VULKAN})")
