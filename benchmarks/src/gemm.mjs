// pali's vision-tower matrix product (native/src/model/cpu_gemm.cpp) against ggml's mul_mat, in the same run:
// 1. the product alone at the tower's shapes (So400m: K = 1152 → N = 1152 / 4304, K = 4304 → N = 1152, the
//    projector 1152 → 2048; M = 256 tokens, one 224 px image), per weight type, both paths alternated;
// 2. the whole image encode of each synthetic mmproj in benchmarks/.cache (`pnpm bench -- --quick --prepare`
//    writes the 224 ones, `weights.mjs` the other types) with PALI_VISION_GEMM=ggml and =pali, each in its own
//    process: load, one warm-up encode, then `--reps` timed encodes; and how far apart the two paths' features are.
// Prints a line per row and writes benchmarks/results/<day>-gemm.json.
//
//   node benchmarks/src/gemm.mjs [--reps 3] [--threads N] [--sizes 224] [--types f16,q8_0,bf16]
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadNative, systemInfo } from "@pali/core";
import { relL2 } from "./compare.mjs";
import { encodeChild } from "./encode-child.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const cache = join(root, "benchmarks", ".cache");
const { values } = parseArgs({
  options: {
    reps: { type: "string", default: "3" },
    threads: { type: "string" },
    sizes: { type: "string", default: "224" },
    types: { type: "string", default: "f16,q8_0,bf16" },
    child: { type: "string" },
  },
});
const threads = Number(values.threads ?? systemInfo().defaultThreads);
const reps = Number(values.reps);
const paths = ["ggml", "pali"];

if (values.child) {
  await encodeChild(JSON.parse(values.child), reps, threads);
  process.exit(0);
}

const types = values.types.split(",");
const native = loadNative();
const products = [];
const shapes = [
  { what: "q, k, v, out", m: 256, n: 1152, k: 1152 },
  { what: "mlp up", m: 256, n: 4304, k: 1152 },
  { what: "mlp down", m: 256, n: 1152, k: 4304 },
  { what: "projector", m: 256, n: 2048, k: 1152 },
];
for (const s of shapes) {
  for (const type of types) {
    if (type === "q8_0" && s.k % 32 !== 0) continue; // the converter keeps such matrices f16
    const best = {};
    for (let r = 0; r < reps; r++) {
      for (const path of paths)
        best[path] = Math.max(best[path] ?? 0, await native.benchMatmul(s.m, s.n, s.k, threads, type, path, 3));
    }
    const kernel = native.gemmKernel(type, s.k);
    const row = { ...s, type, kernel, ggmlGflops: best.ggml, paliGflops: best.pali, speedup: best.pali / best.ggml };
    products.push(row);
    console.log(
      `${s.what.padEnd(12)} ${`${s.n}×${s.k}`.padEnd(10)} ${type.padEnd(5)} ggml ${best.ggml.toFixed(1).padStart(6)}  pali ${best.pali.toFixed(1).padStart(6)} GFLOP/s  ${row.speedup.toFixed(2)}×  (${kernel})`,
    );
  }
}

const encodes = [];
for (const size of values.sizes.split(",").map(Number)) {
  for (const type of types) {
    const mmproj = join(cache, `mmproj-pg1-3b-${size}-${type}.gguf`);
    if (!existsSync(mmproj)) {
      console.error(`skipping ${size} ${type}: ${mmproj} is missing`);
      continue;
    }
    const features = {};
    const row = { size, type };
    for (const path of paths) {
      const out = join(tmpdir(), `pali-gemm-${process.pid}-${size}-${type}-${path}.f32`);
      const stdout = execFileSync(
        process.execPath,
        [
          fileURLToPath(import.meta.url),
          "--child",
          JSON.stringify({ mmproj, size, out }),
          "--reps",
          String(reps),
          "--threads",
          String(threads),
        ],
        { env: { ...process.env, PALI_VISION_GEMM: path }, encoding: "utf8", maxBuffer: 1 << 20 },
      );
      const bytes = readFileSync(out);
      unlinkSync(out);
      features[path] = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      const { ms } = JSON.parse(stdout);
      row[`${path}Ms`] = ms.map(Math.round);
      row[`${path}MinMs`] = Math.round(Math.min(...ms));
    }
    row.speedup = row.ggmlMinMs / row.paliMinMs;
    row.relL2PaliVsGgml = relL2(features.pali, features.ggml);
    encodes.push(row);
    console.log(
      `encode ${size} ${type.padEnd(5)} ggml ${String(row.ggmlMinMs).padStart(7)} ms  pali ${String(row.paliMinMs).padStart(7)} ms  ${row.speedup.toFixed(2)}×  features relL2 ${row.relL2PaliVsGgml.toExponential(1)}`,
    );
  }
}
const file = join(root, "benchmarks", "results", `${new Date().toISOString().slice(0, 10)}-gemm.json`);
writeFileSync(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), system: systemInfo(), threads, products, encodes }, null, 1)}\n`,
);
console.log(`wrote ${file}`);
