// A matrix-product rate for benchmarks: the FLOP bound that encode and prefill are measured against.
#include "bench.h"
#include "internal.h"
#include "../model/cpu_gemm.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <cstring>
#include <vector>

namespace {

// W [k, n] of a ggml type times f32 activations [k, m] on the CPU backend, by ggml's mul_mat ("ggml") or pali's
// product for the vision tower ("pali", cpu_gemm.h). w_data (the rows' bytes) and x may be null: zeros then.
// Runs the graph of `reps` copies (at least one) once to warm up and once timed; out (m·n floats) gets the result.
// Returns the seconds of the timed run (the reps), or a negative number with the message in pali_last_error().
// pali's path can also add a bias (n floats), apply the GELU, and pad heads of `head` columns (cpu_gemm.h); out
// then holds m rows of the padded width.
struct product_extras {
    const float * bias = nullptr;
    bool gelu = false;
    int32_t head = 0;
};

double run_product(const char * type_name, const char * path, int64_t m, int64_t n, int64_t k, int32_t n_threads, const void * w_data,
                   const float * x, float * out, int32_t reps, const product_extras & extras = {}) {
    if (m < 1 || n < 1 || k < 1 || m > 65536 || n > 65536 || k > 65536 || reps < 0) {
        pali::fail(PALI_ERR_INVALID_ARGUMENT, "matrix product: m, n and k must be 1..65536 and reps at least 0");
        return -1.0;
    }
    const bool ours = path != nullptr && strcmp(path, "pali") == 0;
    if (!ours && (path == nullptr || strcmp(path, "ggml") != 0)) {
        pali::fail(PALI_ERR_INVALID_ARGUMENT, std::string("matrix product: the path is \"ggml\" or \"pali\", not \"") + (path ? path : "") + "\"");
        return -1.0;
    }
    // any ggml weight type by its ggml name ("f32", "f16", "bf16", "q8_0", "q4_K", …) whose blocks tile a row
    const ggml_type type = pali::type_by_name(type_name);
    if (type == GGML_TYPE_COUNT || k % ggml_blck_size(type) != 0) {
        pali::fail(PALI_ERR_INVALID_ARGUMENT, std::string("matrix product: no ggml weight type \"") + (type_name ? type_name : "") +
                                                  "\" whose blocks tile a row of " + std::to_string(k));
        return -1.0;
    }
    if (!ours && (extras.bias != nullptr || extras.gelu || extras.head != 0)) {
        pali::fail(PALI_ERR_INVALID_ARGUMENT, "matrix product: the bias, GELU and head padding are pali's path only");
        return -1.0;
    }
    if (ours && !pali::cpu_gemm_supported()) {
        pali::fail(PALI_ERR_INVALID_ARGUMENT, "matrix product: this CPU (or build) cannot run pali's product; it needs x86-64 with AVX2, FMA and F16C");
        return -1.0;
    }
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    ggml_backend_t backend = ggml_backend_dev_init(dev, nullptr);
    if (backend == nullptr) {
        pali::fail(PALI_ERR_BACKEND, "matrix product: could not start the ggml CPU backend");
        return -1.0;
    }
    auto set_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_set_n_threads");
    if (set_threads) set_threads(backend, n_threads > 0 ? n_threads : pali_default_threads());

    // The reps are copies of the product in one graph, as the tower's products are: one compute keeps the threads
    // awake between them, where separate computes would time the waking of idle (virtual) cores.
    const int32_t copies = std::max(reps, 1);
    ggml_init_params params = { ggml_tensor_overhead() * (8 + 3 * (size_t) copies) + ggml_graph_overhead(), nullptr, true };
    ggml_context * wctx = ggml_init(params);
    ggml_context * ctx = ggml_init(params);
    ggml_tensor * a = ggml_new_tensor_2d(wctx, type, k, n);
    ggml_tensor * b = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, m);
    ggml_tensor * bias = extras.bias != nullptr ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, n) : nullptr;
    ggml_tensor * c = ggml_mul_mat(ctx, a, b);
    ggml_backend_buffer_t wbuf = nullptr;
    // ggml's weights live where libllama would put them on this CPU: in the CPU_REPACK buffer when it has an
    // interleaved layout for the type (q4_0, q4_K, q8_0, iq4_nl on AVX2/AVX-512 and some Arm cores), else in a
    // plain buffer; the repacked kernels are up to twice as fast, and they are what prefill runs. pali's product
    // reads the plain layout.
    auto get_extra = (ggml_backend_dev_get_extra_bufts_t) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_dev_get_extra_bufts");
    for (ggml_backend_buffer_type_t * buft = get_extra && !ours ? get_extra(dev) : nullptr; buft != nullptr && *buft != nullptr && wbuf == nullptr; buft++) {
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
    if (ours && (!pali::cpu_gemm_takes(a) || (extras.head != 0 && !pali::cpu_gemm_pads(a, extras.head)))) {
        pali::fail(PALI_ERR_INVALID_ARGUMENT, "matrix product: pali's product takes f32, f16, bf16 and q8_0 weights of a multiple of 16 rows (n), and heads "
                                              "of a multiple of 8 columns that divide n");
        ggml_backend_buffer_free(wbuf);
        ggml_free(ctx);
        ggml_free(wctx);
        ggml_backend_free(backend);
        return -1.0;
    }
    ggml_cgraph * gf = ggml_new_graph(ctx);
    for (int32_t i = 0; i < copies; i++) {
        if (i > 0 || ours) c = ours ? pali::cpu_gemm(ctx, a, b, bias, extras.gelu, extras.head) : ggml_mul_mat(ctx, a, b);
        ggml_build_forward_expand(gf, c);
    }
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, backend);
    std::vector<uint8_t> zeros(std::max(ggml_nbytes(a), ggml_nbytes(b)), 0);
    ggml_backend_tensor_set(a, w_data ? w_data : zeros.data(), 0, ggml_nbytes(a));
    ggml_backend_tensor_set(b, x ? (const void *) x : zeros.data(), 0, ggml_nbytes(b));
    if (bias != nullptr) ggml_backend_tensor_set(bias, extras.bias, 0, ggml_nbytes(bias));
    ggml_backend_graph_compute(backend, gf); // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    if (reps > 0) ggml_backend_graph_compute(backend, gf);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (out != nullptr) ggml_backend_tensor_get(c, out, 0, ggml_nbytes(c));
    ggml_backend_buffer_free(buf);
    ggml_backend_buffer_free(wbuf);
    ggml_free(ctx);
    ggml_free(wctx);
    ggml_backend_free(backend);
    return s;
}

} // namespace

extern "C" double pali_bench_matmul_gflops(int32_t m, int32_t n, int32_t k, int32_t n_threads, const char * type_name, const char * path,
                                           int32_t reps) {
    if (reps < 1) {
        pali::fail(PALI_ERR_INVALID_ARGUMENT, "matmul bench: reps must be at least 1");
        return -1.0;
    }
    const double s = run_product(type_name, path, m, n, k, n_threads, nullptr, nullptr, nullptr, reps);
    return s < 0 ? s : 2.0 * m * (double) n * k * reps / s / 1e9;
}

extern "C" int32_t pali_matmul(const char * type, const char * path, int32_t m, int32_t n, int32_t k, const void * w, size_t w_bytes, const float * x,
                               const float * bias, int32_t gelu, int32_t head, float * out, size_t out_len, int32_t n_threads) {
    return pali::guard("pali_matmul", [&]() -> int32_t {
        if (w == nullptr || x == nullptr || out == nullptr) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "matmul: w, x and out are required");
        const ggml_type t = pali::type_by_name(type);
        if (t != GGML_TYPE_COUNT && k > 0 && n > 0 && ggml_blck_size(t) > 0 && k % ggml_blck_size(t) == 0 &&
            w_bytes != ggml_row_size(t, k) * (size_t) n) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "matmul: " + std::to_string(n) + " rows of " + std::to_string(k) + " " + type + " values take " +
                                                             std::to_string(ggml_row_size(t, k) * (size_t) n) + " bytes, not " + std::to_string(w_bytes));
        }
        if (head < 0 || (head > 0 && n % head != 0)) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "matmul: head must divide n");
        const size_t width = head > 0 ? (size_t) (n / head) * (head + (16 - head % 16) % 16) : (size_t) n;
        if (m < 1 || out_len != (size_t) m * width) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "matmul: out must hold m rows of " + std::to_string(width) + " floats");
        }
        product_extras extras;
        extras.bias = bias;
        extras.gelu = gelu != 0;
        extras.head = head;
        return run_product(type, path, m, n, k, n_threads, w, x, out, 0, extras) < 0 ? PALI_ERR_INVALID_ARGUMENT : PALI_OK;
    });
}

extern "C" const char * pali_gemm_kernel(const char * type, int32_t k) {
    ggml_tensor w{}; // only the type and the row length decide
    w.type = pali::type_by_name(type);
    const bool type_ok = w.type == GGML_TYPE_F32 || w.type == GGML_TYPE_F16 || w.type == GGML_TYPE_BF16 || w.type == GGML_TYPE_Q8_0;
    w.ne[0] = k;
    const char * kernel = type_ok && k > 0 ? pali::cpu_gemm_kernel(&w) : nullptr;
    return kernel != nullptr ? kernel : "";
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
