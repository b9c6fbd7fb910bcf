#!/usr/bin/env node
// Aggregate decode throughput of continuous batching: B requests (B in --npl) each with its own prefix of
// --pp positions, then --ntg decode steps of all B together, through pali's engine (core Context.seqStep, as
// the SDK's scheduler runs it, sampling included) and through llama.cpp's own llama-batched-bench on the same
// decoder file with the same settings (unified KV cache, flash attention off), in this run.
//   node benchmarks/src/batched.mjs --model F.gguf [--npl 1,2,4,8] [--pp 264] [--ntg 32] [--threads N] [--reps 2]
// Prints one JSON document (the table rows) on its last line.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Context, systemInfo, TextModel } from "@pali/core";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const nativeOut = join(root, "native", "build", "Release");
const llamaSrc = join(root, "native", "vendor", "llama.cpp");
const cache = join(root, "benchmarks", ".cache");

const args = process.argv.slice(2).filter((a, i) => !(i === 0 && a === "--"));
const { values } = parseArgs({
  args,
  options: {
    model: { type: "string" },
    npl: { type: "string", default: "1,2,4,8" },
    pp: { type: "string", default: "264" },
    ntg: { type: "string", default: "32" },
    threads: { type: "string" },
    reps: { type: "string", default: "2" },
  },
});
if (!values.model) throw new Error("--model is required");
const modelPath = resolve(values.model);
const npl = values.npl.split(",").map(Number);
const pp = Number(values.pp);
const ntg = Number(values.ntg);
const reps = Number(values.reps);
const threads = Number(values.threads ?? systemInfo().defaultThreads);
const log = (m) => process.stderr.write(`batched: ${new Date().toISOString().slice(11, 19)} ${m}\n`);

/** llama-batched-bench, built once from the pinned source against the libraries pali links. */
function batchedBench() {
  const exe = join(cache, "llama-batched-bench");
  if (existsSync(exe)) return exe;
  log("building llama-batched-bench against pali's ggml/libllama");
  const lib = (n) =>
    `-l:${execFileSync("sh", ["-c", `ls ${nativeOut} | grep -E '^${n}$' | head -1`], { encoding: "utf8" }).trim()}`;
  const dir = join(llamaSrc, "tools", "batched-bench");
  const sources = ["batched-bench.cpp", "main.cpp"].map((f) => join(dir, f)).filter(existsSync);
  execFileSync("g++", [
    "-std=c++17",
    "-O2",
    "-DNDEBUG",
    "-o",
    exe,
    ...sources,
    ...["include", "ggml/include", "common", "vendor"].map((d) => `-I${join(llamaSrc, d)}`),
    `-L${nativeOut}`,
    lib("libllama\\..*so"),
    lib("libggml\\..*so"),
    "-lggml-base",
    "-lllama-common",
    `-Wl,-rpath,${nativeOut}`,
    "-pthread",
  ]);
  return exe;
}

/** pali's engine: a context with room for the largest B; run(rows) measures every B once, keeping the best. */
async function paliEngine() {
  const model = await TextModel.load(modelPath, { gpuLayers: 0, useMmap: false });
  const info = model.info();
  const context = await Context.create(model, {
    contextSize: pp + ntg + 8,
    threads,
    flashAttention: false,
    kvF32: false,
    maxBeams: 1,
    batchSize: pp,
    parallel: Math.max(...npl),
  });
  const d = info.embeddingLength;
  const imageTokens = pp - 8;
  // Embeddings of the projector's scale and a short prompt: the cost depends only on the sizes.
  let s = 1;
  const embeddings = Float32Array.from({ length: imageTokens * d }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (s / 2 ** 32 - 0.5) * 3.4;
  });
  const text = Int32Array.from([2, 100, 200, 300, 400, 500, 600, 108].map((t) => t % info.vocabSize));
  const params = { maxTokens: ntg + 1, temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, repeatLastN: 64, seed: 0 };
  return {
    async run(rows) {
      for (const b of npl) {
        const seqs = Int32Array.from({ length: b }, (_, i) => i);
        const tokens = new Int32Array(b);
        for (const seq of seqs) tokens[seq] = (await context.seqPrefill(seq, embeddings, imageTokens, text, params)).token;
        const outTokens = new Int32Array(b);
        const outLogprobs = new Float32Array(b);
        const t0 = performance.now();
        for (let i = 0; i < ntg; i++) {
          await context.seqStep(seqs, tokens, outTokens, outLogprobs);
          tokens.set(outTokens);
        }
        const rate = (b * ntg) / ((performance.now() - t0) / 1000);
        for (const seq of seqs) context.seqRelease(seq);
        rows[b] = Math.max(rows[b] ?? 0, rate);
        log(`pali B=${b}: ${rate.toFixed(2)} tok/s`);
      }
    },
    dispose() {
      context.dispose();
      model.dispose();
    },
  };
}

/** llama-batched-bench once over every B, keeping the best of each. */
function llamaOnce(exe, rows) {
  const maxB = Math.max(...npl);
  const all = ["-m", modelPath, "-c", String(maxB * (pp + ntg + 8)), "-b", "2048", "-ub", String(pp)];
  all.push("-npp", String(pp), "-ntg", String(ntg), "-npl", npl.join(","), "-t", String(threads), "-fa", "off", "-kvu");
  all.push("--output-format", "jsonl");
  const run = spawnSync(exe, all, { cwd: nativeOut, encoding: "utf8", maxBuffer: 1 << 24 });
  if (run.status !== 0) throw new Error(`llama-batched-bench failed: ${run.stderr.slice(-2000)}`);
  for (const line of run.stdout.split("\n").filter((l) => l.startsWith("{"))) {
    const j = JSON.parse(line);
    rows[j.pl] = Math.max(rows[j.pl] ?? 0, j.speed_tg);
    log(`llama-batched-bench B=${j.pl}: ${j.speed_tg.toFixed(2)} tok/s`);
  }
}

// Alternating per repetition, so that both see the same neighbours' load; pali's model stays loaded between.
const exe = batchedBench();
const engine = await paliEngine();
const llamaRows = {};
const paliRows = {};
for (let r = 0; r < reps; r++) {
  llamaOnce(exe, llamaRows);
  await engine.run(paliRows);
}
engine.dispose();
const table = npl.map((b) => ({
  parallel: b,
  paliTokPerS: paliRows[b],
  llamaBatchedBenchTokPerS: llamaRows[b],
  vsLlama: paliRows[b] / llamaRows[b],
  vsSingle: paliRows[b] / paliRows[npl[0]],
}));
console.log(JSON.stringify({ pp, ntg, threads, rows: table }));
