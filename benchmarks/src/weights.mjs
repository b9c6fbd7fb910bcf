// Weight types on this CPU, measured, for the image encoder and for the decoder of the full-size synthetic
// PG1-3B-224 (the figures behind `pali convert --mmproj-type auto` and the decoder type the docs recommend).
// Encoder: each mmproj type (bf16, f16, q8_0, q4_0), one 224 px encode in the plain layout (PALI_CPU_REPACK=0)
// and in the CPU backend's fast layouts (AMX tiles where the CPU has them, else repacked q4_0), interleaved over
// rounds so that a noisy neighbour slows every variant alike; the minimum and median of the rounds, and each
// type's features against bf16 (relative L2). Decoder: llama-bench (built by bench.mjs against pali's libllama)
// on each decoder file (bf16, f16, q8_0, q4_0, q4_k_m), the 270-token prefix (pp270) and 16 tokens after it,
// one repetition per round, interleaved the same way; the best round.
//
//   node benchmarks/src/weights.mjs [--rounds 3] [--threads N] [--only encoder|decoder]
//   (after `pnpm bench -- --quick --prepare`)
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { convertCheckpoint } from "@pali/convert";
import { systemInfo, VisionModel } from "@pali/core";
import { relL2 } from "./compare.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const cache = join(root, "benchmarks", ".cache");
const { values } = parseArgs({ options: { rounds: { type: "string" }, threads: { type: "string" }, only: { type: "string" } } });
const rounds = Number(values.rounds ?? 3);
const threads = Number(values.threads ?? systemInfo().defaultThreads);
const doEncoder = values.only !== "decoder";
const doDecoder = values.only !== "encoder";
const types = ["bf16", "f16", "q8_0", "q4_0"];
const decoderTypes = [...types, "q4_k_m"];
const checkpoint = join(cache, "pg1-3b-224");
if (!existsSync(checkpoint)) throw new Error(`${checkpoint} is missing: run \`pnpm bench -- --quick --prepare\` first`);
const llamaBench = join(cache, "llama-bench");
if (doDecoder && !existsSync(llamaBench))
  throw new Error(`${llamaBench} is missing: run \`pnpm bench -- --quick --prepare\` first`);

const modelOf = (type) => join(cache, `pg1-3b-224-${type}.gguf`);
const mmprojOf = (type) => join(cache, `mmproj-pg1-3b-224-${type}.gguf`);
// one conversion per type gives that type's decoder and (for the mmproj types) its image encoder
for (const type of decoderTypes) {
  const mmprojType = types.includes(type) ? type : "f16";
  if (existsSync(modelOf(type)) && existsSync(mmprojOf(mmprojType))) continue;
  console.error(`converting pg1-3b-224 at ${type}`);
  await convertCheckpoint({ input: checkpoint, outDir: cache, type, mmprojType, name: "pg1-3b-224", force: true });
}

/** Encode times per mmproj type and layout, and the features against bf16. */
async function measureEncoder() {
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
  return rows;
}

/** llama-bench prefill and decode rates per decoder type, the best of the rounds. */
function measureDecoder() {
  const bench = (type, args) => {
    const all = ["-m", modelOf(type), ...args, "-t", String(threads), "-r", "1", "-fa", "0", "-o", "json"];
    const lb = spawnSync(llamaBench, all, {
      cwd: join(root, "native", "build", "Release"),
      encoding: "utf8",
      maxBuffer: 1 << 24,
    });
    if (lb.status !== 0) throw new Error(`llama-bench failed: ${lb.stderr}`);
    return JSON.parse(lb.stdout)[0].avg_ts;
  };
  const pp = new Map(decoderTypes.map((t) => [t, []]));
  const tg = new Map(decoderTypes.map((t) => [t, []]));
  for (let round = 0; round < rounds; round++) {
    for (const type of decoderTypes) {
      console.error(`llama-bench ${type}, round ${round + 1}`);
      pp.get(type).push(bench(type, ["-p", "270", "-n", "0"]));
      tg.get(type).push(bench(type, ["-p", "0", "-n", "16", "-d", "270"]));
    }
  }
  return decoderTypes.map((type) => ({
    type,
    ppTokPerS: Math.max(...pp.get(type)),
    tgTokPerS: Math.max(...tg.get(type)),
    ppRounds: pp.get(type),
    tgRounds: tg.get(type),
  }));
}

const rows = doEncoder ? await measureEncoder() : [];
const decoder = doDecoder ? measureDecoder() : [];
console.log(`CPU: ${Object.keys(systemInfo().cpuFeatures).join(" ")}; ${threads} threads; ${rounds} rounds`);
const base = rows.find((r) => r.type === "bf16" && r.layout === "plain");
for (const r of rows)
  console.log(
    `${r.type.padEnd(5)} ${r.layout.padEnd(6)} min ${String(r.minMs).padStart(6)} ms  median ${String(r.medianMs).padStart(6)} ms  ${(base.minMs / r.minMs).toFixed(2)}× bf16  relL2 vs bf16 ${r.relL2VsBf16.toExponential(1)}`,
  );
const q4km = decoder.find((r) => r.type === "q4_k_m");
for (const r of decoder)
  console.log(
    `decoder ${r.type.padEnd(6)} pp270 ${r.ppTokPerS.toFixed(1).padStart(6)} tok/s (${(r.ppTokPerS / q4km.ppTokPerS).toFixed(2)}× q4_k_m)  tg16 ${r.tgTokPerS.toFixed(1).padStart(5)} tok/s`,
  );
const file = join(
  root,
  "benchmarks",
  "results",
  `${new Date().toISOString().slice(0, 10)}-weights${values.only ? `-${values.only}` : ""}.json`,
);
writeFileSync(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), system: systemInfo(), threads, rounds, rows, decoder }, null, 1)}\n`,
);
console.log(`wrote ${file}`);
