// The machine's limits, measured in the same run: memory read bandwidth (every thread summing its slice of a
// 1 GiB buffer, in native code) and the best matrix-product rate on the CPU per weight type: ggml's mul_mat or,
// where it takes the type, pali's own product (native/src/model/cpu_gemm.cpp), whichever is faster here.
import { loadNative } from "@pali/core";

/** GB/s of memory reads on `threads` threads: the bound on decoding, which streams every weight per token. */
export async function memoryBandwidth(threads) {
  return loadNative().benchReadBandwidth(1024, threads, 5);
}

/** GFLOP/s of 2048×2048 matrix products on the CPU, per weight type (ggml's type names): the faster path's. */
export async function matmulRate(threads) {
  const native = loadNative();
  const out = {};
  // best of two samples per path: one sample on this shared host once read 389 where 650–690 is usual
  const rate = async (type, path) =>
    Math.max(
      await native.benchMatmul(2048, 2048, 2048, threads, type, path, 3),
      await native.benchMatmul(2048, 2048, 2048, threads, type, path, 3),
    );
  for (const type of ["f32", "f16", "bf16", "q8_0", "q4_K"]) {
    out[type] = await rate(type, "ggml");
    if (native.gemmKernel(type, 2048) !== "") out[type] = Math.max(out[type], await rate(type, "pali"));
  }
  return out;
}
