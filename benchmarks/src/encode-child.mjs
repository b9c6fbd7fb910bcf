// The child process of attention.mjs and gemm.mjs: one encoder under the parent's settings (environment), one
// warm-up encode, then `reps` timed ones; the features go to a file for the parent's comparison, the times and
// peak RSS to stdout as JSON.
import { writeFileSync } from "node:fs";
import { VisionModel } from "@pali/core";

export async function encodeChild({ mmproj, size, out }, reps, threads) {
  const pixels = new Float32Array(3 * size * size).map((_, i) => Math.sin(i * 0.01));
  const vm = await VisionModel.load(mmproj);
  await vm.encode(pixels, 1, { threads });
  const ms = [];
  let features;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    features = await vm.encode(pixels, 1, { threads });
    ms.push(performance.now() - t0);
  }
  writeFileSync(out, Buffer.from(features.data.buffer, features.data.byteOffset, features.data.byteLength));
  console.log(JSON.stringify({ ms, peakRssBytes: process.resourceUsage().maxRSS * 1024 }));
}
