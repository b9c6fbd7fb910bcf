// Image-encoder weight types on this CPU, measured: for each mmproj type (bf16, f16, q8_0, q4_0) of the
// full-size synthetic PG1-3B-224 tower, the 224 px encode in the plain layout (PALI_CPU_REPACK=0) and in the
// CPU backend's fast layouts (AMX tiles where the CPU has them, else repacked q4_0), interleaved over rounds so
// that a noisy neighbour slows every variant alike; the minimum and median of the rounds, and each type's
// features against bf16 (relative L2). The figures behind `pali convert --mmproj-type auto`.
//
//   node benchmarks/src/weights.mjs [--rounds 3] [--threads N]   (after `pnpm bench --quick --prepare`)
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { convertCheckpoint } from "@pali/convert";
import { systemInfo, VisionModel } from "@pali/core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const cache = join(root, "benchmarks", ".cache");
const { values } = parseArgs({ options: { rounds: { type: "string" }, threads: { type: "string" } } });
const rounds = Number(values.rounds ?? 3);
const threads = Number(values.threads ?? systemInfo().defaultThreads);
const types = ["bf16", "f16", "q8_0", "q4_0"];
const checkpoint = join(cache, "pg1-3b-224");
if (!existsSync(checkpoint)) throw new Error(`${checkpoint} is missing: run \`pnpm bench -- --quick --prepare\` first`);

const mmprojOf = (type) => join(cache, `mmproj-pg1-3b-224-${type}.gguf`);
for (const type of types) {
  if (existsSync(mmprojOf(type))) continue;
  const out = join(cache, `weights-${type}`);
  mkdirSync(out, { recursive: true });
  console.error(`converting the tower at ${type}`);
  const r = await convertCheckpoint({
    input: checkpoint,
    outDir: out,
    type: "q4_0",
    mmprojType: type,
    name: "pg1-3b-224",
    force: true,
  });
  renameSync(r.mmproj, mmprojOf(type));
}

const pixels = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.01));
const variants = types.flatMap((type) => [
  { type, layout: "plain", env: "0" },
  { type, layout: "fast", env: "1" },
]);
const times = new Map(variants.map((v) => [v, []]));
const features = new Map();
for (let round = 0; round < rounds; round++) {
  for (const v of variants) {
    process.env.PALI_CPU_REPACK = v.env;
    const vm = await VisionModel.load(mmprojOf(v.type));
    if (round === 0) await vm.encode(pixels, 1, { threads }); // warm-up: first-touch pages, repacking
    const t0 = performance.now();
    const f = await vm.encode(pixels, 1, { threads });
    times.get(v).push(performance.now() - t0);
    if (v.layout === "fast") features.set(v.type, f.data);
    vm.dispose();
  }
}
const relL2 = (a, b) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
};
const rows = variants.map((v) => {
  const t = [...times.get(v)].sort((a, b) => a - b);
  return {
    type: v.type,
    layout: v.layout,
    minMs: Math.round(t[0]),
    medianMs: Math.round(t[Math.floor(t.length / 2)]),
    relL2VsBf16: relL2(features.get(v.type), features.get("bf16")),
  };
});
const base = rows.find((r) => r.type === "bf16" && r.layout === "plain");
console.log(`CPU: ${Object.keys(systemInfo().cpuFeatures).join(" ")}; ${threads} threads; ${rounds} rounds`);
for (const r of rows)
  console.log(
    `${r.type.padEnd(5)} ${r.layout.padEnd(6)} min ${String(r.minMs).padStart(6)} ms  median ${String(r.medianMs).padStart(6)} ms  ${(base.minMs / r.minMs).toFixed(2)}× bf16  relL2 vs bf16 ${r.relL2VsBf16.toExponential(1)}`,
  );
const file = join(root, "benchmarks", "results", `${new Date().toISOString().slice(0, 10)}-weights.json`);
writeFileSync(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), system: systemInfo(), threads, rounds, rows }, null, 1)}\n`,
);
console.log(`wrote ${file}`);
