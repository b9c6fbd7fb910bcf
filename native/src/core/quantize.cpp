// Model quantization through libllama's quantizer (llama-quantize's tensor-type choices).
#include "internal.h"

#include "llama.h"

#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

namespace {

struct ftype_name { const char * name; llama_ftype ftype; };

constexpr ftype_name k_ftypes[] = {
    { "f32",    LLAMA_FTYPE_ALL_F32 },
    { "f16",    LLAMA_FTYPE_MOSTLY_F16 },
    { "bf16",   LLAMA_FTYPE_MOSTLY_BF16 },
    { "q8_0",   LLAMA_FTYPE_MOSTLY_Q8_0 },
    { "q4_0",   LLAMA_FTYPE_MOSTLY_Q4_0 },
    { "q4_k_m", LLAMA_FTYPE_MOSTLY_Q4_K_M },
    { "q5_k_m", LLAMA_FTYPE_MOSTLY_Q5_K_M },
    { "q6_k",   LLAMA_FTYPE_MOSTLY_Q6_K },
};

} // namespace

extern "C" {

struct pali_quantize_params pali_quantize_default_params(void) {
    pali_quantize_params p;
    p.type      = "q4_k_m";
    p.n_threads = 0;
    return p;
}

int32_t pali_quantize_model(const char * in_path, const char * out_path, struct pali_quantize_params params) {
    return pali::guard("pali_quantize_model", [&]() -> int32_t {
        if (in_path == nullptr || out_path == nullptr || params.type == nullptr) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "in_path, out_path and type are required");
        }
        const ftype_name * match = nullptr;
        for (const auto & f : k_ftypes) {
            if (std::string(f.name) == params.type) match = &f;
        }
        if (match == nullptr) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, std::string("unknown quantization type ") + params.type);
        }
        std::error_code ec;
        if (!std::filesystem::is_regular_file(in_path, ec)) {
            return pali::fail(PALI_ERR_IO, std::string("no such file: ") + in_path);
        }

        llama_model_quantize_params qp = llama_model_quantize_default_params();
        qp.ftype   = match->ftype;
        qp.nthread = params.n_threads > 0 ? params.n_threads : pali_default_threads();

        const std::string tmp = std::string(out_path) + ".partial";
        if (llama_model_quantize(in_path, tmp.c_str(), &qp) != 0) {
            std::filesystem::remove(tmp, ec);
            return pali::fail(PALI_ERR_MODEL_FORMAT, std::string("libllama could not quantize ") + in_path + " (see the log for the reason)");
        }
        std::filesystem::rename(tmp, out_path, ec);
        if (ec) {
            std::filesystem::remove(tmp, ec);
            return pali::fail(PALI_ERR_IO, std::string("could not move the quantized model into place at ") + out_path);
        }
        return PALI_OK;
    });
}

} // extern "C"
