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
  for (const type of ["f32", "f16", "bf16", "q8_0", "q4_K"]) {
    out[type] = await native.benchMatmul(2048, 2048, 2048, threads, type, "ggml", 3);
    if (native.gemmKernel(type, 2048) !== "")
      out[type] = Math.max(out[type], await native.benchMatmul(2048, 2048, 2048, threads, type, "pali", 3));
  }
  return out;
}
