#include "gguf_weights.h"

#include "../core/internal.h"

#include "ggml-alloc.h"

#include <string>
#include <vector>

namespace pali {

int seek_file(FILE * f, uint64_t offset) {
#ifdef _WIN32
    return _fseeki64(f, (__int64) offset, SEEK_SET);
#else
    return fseeko(f, (off_t) offset, SEEK_SET);
#endif
}

namespace {

int64_t file_size(FILE * f) {
#ifdef _WIN32
    if (_fseeki64(f, 0, SEEK_END) != 0) return -1;
    return _ftelli64(f);
#else
    if (fseeko(f, 0, SEEK_END) != 0) return -1;
    return (int64_t) ftello(f);
#endif
}

} // namespace

int32_t load_weights(const char * path, const gguf_context * gguf, ggml_context * meta, ggml_backend_dev_t device, ggml_backend_buffer_t * buffer) {
    file_ptr file(fopen(path, "rb"));
    if (!file) return fail(PALI_ERR_IO, std::string("could not open ") + path);
    const size_t data_offset = gguf_get_data_offset(gguf);
    const int64_t size = file_size(file.get());
    if (size < 0) return fail(PALI_ERR_IO, std::string("could not read ") + path);
    for (int64_t i = 0; i < gguf_get_n_tensors(gguf); i++) {
        const char * name = gguf_get_tensor_name(gguf, i);
        const uint64_t end = (uint64_t) data_offset + gguf_get_tensor_offset(gguf, i) + ggml_nbytes(ggml_get_tensor(meta, name));
        if (end > (uint64_t) size) {
            return fail(PALI_ERR_MODEL_FORMAT, std::string(path) + " is truncated: tensor " + name + " ends at byte " + std::to_string(end) + " of " +
                                                   std::to_string(size));
        }
    }
    *buffer = ggml_backend_alloc_ctx_tensors_from_buft(meta, ggml_backend_dev_buffer_type(device));
    if (*buffer == nullptr) return fail(PALI_ERR_OUT_OF_MEMORY, std::string("could not allocate the weights of ") + path);
    ggml_backend_buffer_set_usage(*buffer, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    std::vector<uint8_t> staging;
    for (int64_t i = 0; i < gguf_get_n_tensors(gguf); i++) {
        const char * name = gguf_get_tensor_name(gguf, i);
        ggml_tensor * t = ggml_get_tensor(meta, name);
        const size_t bytes = ggml_nbytes(t);
        staging.resize(bytes);
        if (seek_file(file.get(), data_offset + gguf_get_tensor_offset(gguf, i)) != 0 || fread(staging.data(), 1, bytes, file.get()) != bytes) {
            return fail(PALI_ERR_MODEL_FORMAT, std::string(path) + " is truncated: tensor " + name + " cannot be read");
        }
        ggml_backend_tensor_set(t, staging.data(), 0, bytes);
    }
    return PALI_OK;
}

} // namespace pali
