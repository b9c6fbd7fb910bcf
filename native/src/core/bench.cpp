// A matrix-product rate for benchmarks: the FLOP bound that encode and prefill are measured against.
#include "bench.h"
#include "internal.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <cstring>
#include <vector>

extern "C" double pali_bench_matmul_gflops(int32_t n, int32_t n_threads, const char * type_name, int32_t reps) {
    if (n < 32 || n > 16384 || reps < 1) {
        pali::fail(PALI_ERR_INVALID_ARGUMENT, "matmul bench: n must be 32..16384 and reps at least 1");
        return -1.0;
    }
    // any ggml weight type by its ggml name ("f32", "f16", "bf16", "q8_0", "q4_K", …) whose blocks tile a row
    ggml_type type = GGML_TYPE_COUNT;
    for (int t = 0; t < GGML_TYPE_COUNT && type_name != nullptr; t++) {
        const char * name = ggml_type_name((ggml_type) t);
        if (name != nullptr && strcmp(name, type_name) == 0 && ggml_blck_size((ggml_type) t) > 0 && ggml_type_size((ggml_type) t) > 0) {
            type = (ggml_type) t;
        }
    }
    if (type == GGML_TYPE_COUNT || n % ggml_blck_size(type) != 0) {
        pali::fail(PALI_ERR_INVALID_ARGUMENT, std::string("matmul bench: no ggml weight type \"") + (type_name ? type_name : "") +
                                                  "\" whose blocks tile a row of " + std::to_string(n));
        return -1.0;
    }
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    ggml_backend_t backend = ggml_backend_dev_init(dev, nullptr);
    if (backend == nullptr) return -1.0;
    auto set_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_set_n_threads");
    if (set_threads) set_threads(backend, n_threads > 0 ? n_threads : pali_default_threads());

    // The weights live where libllama would put them on this CPU: in the CPU_REPACK buffer when it has an
    // interleaved layout for the type (q4_0, q4_K, q8_0, iq4_nl on AVX2/AVX-512 and some Arm cores), else in a
    // plain buffer; the repacked kernels are up to twice as fast, and they are what prefill runs.
    ggml_init_params params = { ggml_tensor_overhead() * 8 + ggml_graph_overhead(), nullptr, true };
    ggml_context * wctx = ggml_init(params);
    ggml_context * ctx = ggml_init(params);
    ggml_tensor * a = ggml_new_tensor_2d(wctx, type, n, n);
    ggml_tensor * b = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n, n);
    ggml_tensor * c = ggml_mul_mat(ctx, a, b);
    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, c);
    ggml_backend_buffer_t wbuf = nullptr;
    auto get_extra = (ggml_backend_dev_get_extra_bufts_t) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_dev_get_extra_bufts");
    for (ggml_backend_buffer_type_t * buft = get_extra ? get_extra(dev) : nullptr; buft != nullptr && *buft != nullptr && wbuf == nullptr; buft++) {
        wbuf = ggml_backend_alloc_ctx_tensors_from_buft(wctx, *buft);
        if (wbuf != nullptr && (a->extra == nullptr || !ggml_backend_dev_supports_op(dev, c))) {
            ggml_backend_buffer_free(wbuf); // no layout for this type here: a plain buffer then
            wbuf = nullptr;
            a->buffer = nullptr;
            a->data = nullptr;
            a->extra = nullptr;
        }
    }
    if (wbuf == nullptr) wbuf = ggml_backend_alloc_ctx_tensors(wctx, backend);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, backend);
    std::vector<uint8_t> zeros(std::max(ggml_nbytes(a), ggml_nbytes(b)), 0);
    ggml_backend_tensor_set(a, zeros.data(), 0, ggml_nbytes(a));
    ggml_backend_tensor_set(b, zeros.data(), 0, ggml_nbytes(b));
    ggml_backend_graph_compute(backend, gf); // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; i++) ggml_backend_graph_compute(backend, gf);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ggml_backend_buffer_free(buf);
    ggml_backend_buffer_free(wbuf);
    ggml_free(ctx);
    ggml_free(wctx);
    ggml_backend_free(backend);
    return 2.0 * n * (double) n * n * reps / s / 1e9;
}

// Read bandwidth: what decoding needs, since it streams every weight once per token and writes little.
// Each thread sums its own slice of a buffer far larger than the caches; the best of `reps` passes counts.
extern "C" double pali_bench_read_gbs(int32_t mib, int32_t n_threads, int32_t reps) {
    if (mib < 64 || mib > 16384 || reps < 1) {
        pali::fail(PALI_ERR_INVALID_ARGUMENT, "bandwidth bench: the buffer must be 64..16384 MiB and reps at least 1");
        return -1.0;
    }
    const int nt = n_threads > 0 ? n_threads : pali_default_threads();
    const size_t words = (size_t) mib * 1024 * 1024 / sizeof(uint64_t);
    std::vector<uint64_t> buf;
    try {
        buf.resize(words);
    } catch (const std::bad_alloc &) {
        pali::fail(PALI_ERR_OUT_OF_MEMORY, "bandwidth bench: could not allocate " + std::to_string(mib) + " MiB");
        return -1.0;
    }
    std::vector<uint64_t> sums(nt * 8, 0);
    auto pass = [&](int t) {
        const size_t per = words / nt / 8 * 8, begin = per * t;
        const uint64_t * p = buf.data() + begin;
        uint64_t s[8] = { 0 };
        for (size_t i = 0; i < per; i += 8) {
            for (int k = 0; k < 8; k++) s[k] += p[i + k];
        }
        for (int k = 0; k < 8; k++) sums[t * 8 + k] += s[k];
    };
    // first touch by the reading threads, then one warm-up pass
    std::vector<std::thread> pool;
    for (int t = 0; t < nt; t++) {
        pool.emplace_back([&, t] {
            const size_t per = words / nt / 8 * 8;
            std::fill(buf.begin() + per * t, buf.begin() + per * (t + 1), (uint64_t) t + 1);
            pass(t);
        });
    }
    for (auto & th : pool) th.join();
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        pool.clear();
        const auto t0 = std::chrono::steady_clock::now();
        for (int t = 0; t < nt; t++) pool.emplace_back(pass, t);
        for (auto & th : pool) th.join();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, (double) (words / nt / 8 * 8 * nt) * sizeof(uint64_t) / s / 1e9);
    }
    volatile uint64_t sink = 0;
    for (uint64_t v : sums) sink = sink + v; // keeps the sums (and so the reads) alive
    return best;
}
