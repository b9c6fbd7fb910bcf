// float32 rows → f16 / bf16 / quantized rows, with ggml's own converters and quantizers.
#include "internal.h"

#include "ggml.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <thread>
#include <vector>

namespace pali {

ggml_type type_by_name(const char * name) {
    if (name == nullptr) return GGML_TYPE_COUNT;
    std::string want(name);
    std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return (char) std::tolower(c); });
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        const char * n = ggml_type_name((ggml_type) t);
        if (n == nullptr || ggml_blck_size((ggml_type) t) == 0) continue;
        std::string have(n);
        std::transform(have.begin(), have.end(), have.begin(), [](unsigned char c) { return (char) std::tolower(c); });
        if (have == want) return (ggml_type) t;
    }
    return GGML_TYPE_COUNT;
}

} // namespace pali

namespace {

void convert_range(ggml_type type, const float * src, int64_t first_row, int64_t n_rows, int64_t n_per_row, char * dst) {
    const size_t row_size = ggml_row_size(type, n_per_row);
    const float * in = src + first_row * n_per_row;
    char * out = dst + first_row * row_size;
    switch (type) {
        case GGML_TYPE_F32:
            std::copy(in, in + n_rows * n_per_row, (float *) out);
            break;
        case GGML_TYPE_F16:
            ggml_fp32_to_fp16_row(in, (ggml_fp16_t *) out, n_rows * n_per_row);
            break;
        case GGML_TYPE_BF16:
            ggml_fp32_to_bf16_row_ref(in, (ggml_bf16_t *) out, n_rows * n_per_row);
            break;
        default:
            // start is counted in elements from src; ggml writes the rows at their byte position.
            ggml_quantize_chunk(type, src, dst, first_row * n_per_row, n_rows, n_per_row, nullptr);
            break;
    }
}

} // namespace

extern "C" {

int64_t pali_row_size(const char * type, int64_t n_per_row) {
    const ggml_type t = pali::type_by_name(type);
    if (t == GGML_TYPE_COUNT) {
        return pali::fail(PALI_ERR_INVALID_ARGUMENT, std::string("unknown ggml type ") + (type ? type : "(null)"));
    }
    if (n_per_row <= 0 || n_per_row % ggml_blck_size(t) != 0) {
        return pali::fail(PALI_ERR_INVALID_ARGUMENT, "row length " + std::to_string(n_per_row) + " is not a whole number of " +
                                                         ggml_type_name(t) + " blocks of " + std::to_string(ggml_blck_size(t)));
    }
    return (int64_t) ggml_row_size(t, n_per_row);
}

int32_t pali_convert_rows(const char * type, const float * src, int64_t n_rows, int64_t n_per_row, void * dst, size_t dst_size,
                          int32_t n_threads) {
    return pali::guard("pali_convert_rows", [&]() -> int32_t {
        const int64_t row_size = pali_row_size(type, n_per_row);
        if (row_size < 0) return (int32_t) row_size;
        const ggml_type t = pali::type_by_name(type);
        if (src == nullptr || dst == nullptr || n_rows < 0) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "src, dst and a non-negative row count are required");
        }
        if ((size_t) (n_rows * row_size) != dst_size) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "dst has " + std::to_string(dst_size) + " bytes but " +
                                                             std::to_string(n_rows * row_size) + " are needed");
        }
        if (ggml_quantize_requires_imatrix(t)) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, std::string(ggml_type_name(t)) + " needs an importance matrix, which pali does not compute");
        }
        ggml_quantize_init(t);  // once, before the workers share its tables
        const int threads = (int) std::max<int64_t>(1, std::min<int64_t>(n_threads > 0 ? n_threads : pali_default_threads(), n_rows));
        const int64_t per_thread = (n_rows + threads - 1) / threads;
        std::vector<std::thread> workers;
        for (int i = 1; i < threads; i++) {
            const int64_t first = i * per_thread;
            const int64_t count = std::min(per_thread, n_rows - first);
            if (count <= 0) break;
            workers.emplace_back(convert_range, t, src, first, count, n_per_row, (char *) dst);
        }
        convert_range(t, src, 0, std::min(per_thread, n_rows), n_per_row, (char *) dst);
        for (auto & w : workers) w.join();
        return PALI_OK;
    });
}

} // extern "C"
