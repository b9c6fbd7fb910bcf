// The machine's limits, measured in the same run: memory bandwidth (a STREAM-like triad on all cores)
// and the matrix-product rate of ggml's CPU backend.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { loadNative } from "@pali/core";

const triadWorker = `
const { parentPort, workerData } = require("node:worker_threads");
const n = workerData.n;
const a = new Float64Array(n), b = new Float64Array(n).fill(1), c = new Float64Array(n).fill(2);
for (let r = 0; r < 2; r++) for (let i = 0; i < n; i++) a[i] = b[i] + 3 * c[i];
const t0 = process.hrtime.bigint();
for (let r = 0; r < workerData.reps; r++) for (let i = 0; i < n; i++) a[i] = b[i] + 3 * c[i];
const s = Number(process.hrtime.bigint() - t0) / 1e9;
parentPort.postMessage({ bytes: 3 * 8 * n * workerData.reps, seconds: s });
`;

/** GB/s of a triad a = b + 3c over arrays far larger than the caches, one worker per core. */
export async function memoryBandwidth(threads = availableParallelism()) {
  const n = 16 * 1024 * 1024; // 128 MiB per array
  const reps = 5;
  const results = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise((resolve, reject) => {
          const w = new Worker(triadWorker, { eval: true, workerData: { n, reps } });
          w.once("message", resolve);
          w.once("error", reject);
        }),
    ),
  );
  const seconds = Math.max(...results.map((r) => r.seconds));
  return results.reduce((sum, r) => sum + r.bytes, 0) / seconds / 1e9;
}

/** GFLOP/s of 2048×2048 matrix products on ggml's CPU backend, per weight type. */
export async function matmulRate(threads) {
  const native = loadNative();
  const out = {};
  for (const type of ["f32", "f16", "bf16"]) out[type] = await native.benchMatmul(2048, threads, type, 3);
  return out;
}
