// A matrix-product rate for benchmarks: the FLOP bound that encode and prefill are measured against.
#include "internal.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"

#include <chrono>
#include <cstring>
#include <vector>

extern "C" double pali_bench_matmul_gflops(int32_t n, int32_t n_threads, const char * type_name, int32_t reps) {
    if (n < 32 || n > 16384 || reps < 1) return -1.0;
    ggml_type type = GGML_TYPE_F32;
    if (type_name != nullptr && strcmp(type_name, "f16") == 0) type = GGML_TYPE_F16;
    if (type_name != nullptr && strcmp(type_name, "bf16") == 0) type = GGML_TYPE_BF16;
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    ggml_backend_t backend = ggml_backend_dev_init(dev, nullptr);
    if (backend == nullptr) return -1.0;
    auto set_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_set_n_threads");
    if (set_threads) set_threads(backend, n_threads > 0 ? n_threads : pali_default_threads());

    ggml_init_params params = { ggml_tensor_overhead() * 8 + ggml_graph_overhead(), nullptr, true };
    ggml_context * ctx = ggml_init(params);
    ggml_tensor * a = ggml_new_tensor_2d(ctx, type, n, n);
    ggml_tensor * b = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n, n);
    ggml_tensor * c = ggml_mul_mat(ctx, a, b);
    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, c);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, backend);
    std::vector<uint8_t> zeros(std::max(ggml_nbytes(a), ggml_nbytes(b)), 0);
    ggml_backend_tensor_set(a, zeros.data(), 0, ggml_nbytes(a));
    ggml_backend_tensor_set(b, zeros.data(), 0, ggml_nbytes(b));
    ggml_backend_graph_compute(backend, gf); // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; i++) ggml_backend_graph_compute(backend, gf);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    ggml_backend_free(backend);
    return 2.0 * n * (double) n * n * reps / s / 1e9;
}
