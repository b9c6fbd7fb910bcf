// Machine limits for the benchmarks (not part of the public C API in include/pali.h).
#pragma once

#include <cstddef>
#include <cstdint>

// The CPU backend's rate for a product of n×k weights of a ggml type ("f32", "f16", "bf16", "q8_0", "q4_K", …)
// and k×m f32 activations, in GFLOP/s, by ggml's mul_mat (path "ggml") or pali's vision-tower product ("pali").
// Negative on bad arguments.
extern "C" double pali_bench_matmul_gflops(int32_t m, int32_t n, int32_t k, int32_t n_threads, const char * type, const char * path, int32_t reps);

// The same product of given weights (n rows of k values of `type`, w_bytes bytes) and activations x (m rows of
// k floats) into out (m rows of n floats, out_len in all): for the tests that compare both paths with a reference
// product. pali's path may add a bias (n floats, or null), apply SigLIP's GELU (gelu != 0), and pad heads of
// `head` columns with zeros to a multiple of 16 (head 0: none; out rows are that much wider).
extern "C" int32_t pali_matmul(const char * type, const char * path, int32_t m, int32_t n, int32_t k, const void * w, size_t w_bytes, const float * x,
                               const float * bias, int32_t gelu, int32_t head, float * out, size_t out_len, int32_t n_threads);

// Which of pali's kernels the "pali" path runs for weights of this type and row length: "avx512-bf16",
// "avx512-f32", "avx2-f32", or "" where it runs none.
extern "C" const char * pali_gemm_kernel(const char * type, int32_t k);

// Memory read bandwidth in GB/s: n_threads threads summing a buffer of `mib` MiB, best of `reps` passes (the
// bound on decoding, which reads every weight once per token). Negative on bad arguments.
extern "C" double pali_bench_read_gbs(int32_t mib, int32_t n_threads, int32_t reps);
