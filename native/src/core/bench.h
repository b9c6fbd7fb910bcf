// Machine limits for the benchmarks (not part of the public C API in include/pali.h).
#pragma once

#include <cstdint>

// The CPU backend's rate for an n×n by n×n matrix product with weights of a ggml type ("f32", "f16", "bf16",
// "q8_0", "q4_K", …), in GFLOP/s. Negative on bad arguments.
extern "C" double pali_bench_matmul_gflops(int32_t n, int32_t n_threads, const char * type, int32_t reps);

// Memory read bandwidth in GB/s: n_threads threads summing a buffer of `mib` MiB, best of `reps` passes (the
// bound on decoding, which reads every weight once per token). Negative on bad arguments.
extern "C" double pali_bench_read_gbs(int32_t mib, int32_t n_threads, int32_t reps);
