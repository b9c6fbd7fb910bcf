// Library versions, backend loading, devices and CPU features.
#include "internal.h"
#include "../model/gemm_backend.h"

#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <fstream>
#include <utility>

#ifndef PALI_VERSION
#    define PALI_VERSION "0.0.0"
#endif
#ifndef PALI_LLAMA_TAG
#    define PALI_LLAMA_TAG "unknown"
#endif
#ifndef PALI_LLAMA_COMMIT
#    define PALI_LLAMA_COMMIT "unknown"
#endif
#ifndef PALI_BUILD_MODE
#    define PALI_BUILD_MODE "source"
#endif

namespace {

std::once_flag g_backend_once;
thread_local std::string g_features;

int physical_cores() {
#if defined(__linux__)
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::set<std::pair<std::string, std::string>> cores;
    std::string line, physical_id = "0";
    while (std::getline(cpuinfo, line)) {
        auto value = [&] { auto p = line.find(':'); return p == std::string::npos ? std::string() : line.substr(p + 1); };
        if (line.rfind("physical id", 0) == 0) physical_id = value();
        if (line.rfind("core id", 0) == 0) cores.emplace(physical_id, value());
    }
    if (!cores.empty()) return (int) cores.size();
#endif
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : (int) n;
}

} // namespace

extern "C" {

void pali_backend_init(const char * dir) {
    std::call_once(g_backend_once, [dir] {
        pali::install_log_sinks();
        llama_backend_init();
        // Backends built as loadable modules (the prebuilt per-CPU variants, CUDA, Vulkan) live beside
        // the addon; ggml picks the CPU variant with the best score for this processor.
        if (dir != nullptr && dir[0] != '\0') {
            ggml_backend_load_all_from_path(dir);
        } else {
            ggml_backend_load_all();
        }
        pali::register_gemm_backend();
    });
}

const char * pali_version(void) { return PALI_VERSION; }
const char * pali_llama_version(void) { return PALI_LLAMA_TAG " (" PALI_LLAMA_COMMIT ")"; }
const char * pali_ggml_version(void) { return ggml_version(); }
const char * pali_build_mode(void) { return PALI_BUILD_MODE; }

int32_t pali_device_count(void) { return (int32_t) ggml_backend_dev_count(); }

int32_t pali_device_get(int32_t index, struct pali_device_info * out) {
    if (out == nullptr || index < 0 || (size_t) index >= ggml_backend_dev_count()) {
        return pali::fail(PALI_ERR_INVALID_ARGUMENT, "device index out of range");
    }
    ggml_backend_dev_t dev = ggml_backend_dev_get((size_t) index);
    size_t free = 0, total = 0;
    ggml_backend_dev_memory(dev, &free, &total);
    out->name         = ggml_backend_dev_name(dev);
    out->description  = ggml_backend_dev_description(dev);
    out->backend      = ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev));
    out->memory_free  = free;
    out->memory_total = total;
    switch (ggml_backend_dev_type(dev)) {
        case GGML_BACKEND_DEVICE_TYPE_GPU:   out->type = PALI_DEVICE_GPU; break;
        case GGML_BACKEND_DEVICE_TYPE_IGPU:  out->type = PALI_DEVICE_IGPU; break;
        case GGML_BACKEND_DEVICE_TYPE_ACCEL: out->type = PALI_DEVICE_ACCEL; break;
        default:                             out->type = PALI_DEVICE_CPU; break;
    }
    return PALI_OK;
}

const char * pali_cpu_features(void) {
    g_features.clear();
    ggml_backend_reg_t reg = ggml_backend_reg_by_name("CPU");
    if (reg == nullptr) return "";
    auto get_features = (ggml_backend_get_features_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features");
    if (get_features == nullptr) return "";
    for (ggml_backend_feature * f = get_features(reg); f != nullptr && f->name != nullptr; f++) {
        if (!g_features.empty()) g_features += ';';
        g_features += f->name;
        g_features += '=';
        g_features += f->value;
    }
    return g_features.c_str();
}

int32_t pali_default_threads(void) { return physical_cores(); }

} // extern "C"
