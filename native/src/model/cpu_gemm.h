// pali's own matrix product on x86 CPUs with AVX2 or AVX-512: the vision tower's linear layers (a ggml custom op)
// and the decoder's prefill (gemm_backend.h). See cpu_gemm.cpp.
#pragma once

#include "ggml.h"

#include <cstdint>

namespace pali {

// Whether this CPU can run pali's product: x86-64 with AVX2, FMA and F16C, built with GCC or Clang.
bool cpu_gemm_supported();

// Whether the product takes this weight: a 2-D f32, f16, bf16 or q8_0 matrix of a multiple of 16 rows in plain
// host memory (not repacked or in AMX tiles by an extra buffer type, whose own kernels are faster), on a CPU that
// supports it.
bool cpu_gemm_takes(const ggml_tensor * w);

// Which kernel runs a weight it takes: "avx512-bf16" (bf16 weights of even K on CPUs with AVX512_BF16; the
// activations are rounded to bf16), else "avx512-f32" (AVX-512F/BW) or "avx2-f32" (weights widened to f32,
// activations kept in f32); nullptr where unsupported.
const char * cpu_gemm_kernel(const ggml_tensor * w);

// Whether the vision tower uses it for this weight: wherever it takes it (measured faster than ggml's on both
// x86 kinds); PALI_VISION_GEMM=ggml keeps ggml's product everywhere.
bool cpu_gemm_wanted(const ggml_tensor * w);

// Whether the product can add this bias itself (and apply GELU after it): N f32 values in host memory.
bool cpu_gemm_fuses(const ggml_tensor * w, const ggml_tensor * b);

// Whether it can write the output in heads of `head` columns, each padded with zeros to a multiple of 16: head a
// multiple of 8 that divides N.
bool cpu_gemm_pads(const ggml_tensor * w, int64_t head);

// w [K, N] · x [K, M] (+ b) → [N, M] in f32, like ggml_mul_mat (and ggml_add), as a custom op of ggml's CPU
// backend, for a weight it takes; with gelu, SigLIP's tanh GELU of that (gelu_pytorch_tanh, to about 1e-7); with
// a head width cpu_gemm_pads takes, [N / head · roundup(head, 16), M] with each head's padding zero (the rows
// ggml's flash attention wants). x must be f32 and 2-D; b null or one cpu_gemm_fuses takes. Unlike
// ggml_mul_mat's, the avx2-f32 kernel does not round x to f16 or quantize it to q8_0.
ggml_tensor * cpu_gemm(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, ggml_tensor * b = nullptr, bool gelu = false, int64_t head = 0);

// The kernel itself, for the text model's backend (gemm_backend.h), which runs it on its own threads: thread ith of
// nth computes its share of dst = src[0] · src[1] (dst->ne[0] floats a row; src[2], a bias, may be null), src[1]
// being f32 rows, or bf16 ones (cpu_gemm_round_bf16) where cpu_gemm_kernel says "avx512-bf16".
using cpu_gemm_fn = void (*)(ggml_tensor * dst, int ith, int nth, void * userdata);
cpu_gemm_fn cpu_gemm_function(const ggml_tensor * w);
void cpu_gemm_round_bf16(const float * x, uint16_t * y, int64_t n);

} // namespace pali
