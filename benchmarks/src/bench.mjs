#!/usr/bin/env node
// pnpm bench [--quick] [--no-transformers] [--setups pg1-3b-224,…] [--threads N] [--prepare]
// pnpm bench --family pg2-10b-224 [--tokens 16]: one larger family once, end to end (see family.mjs)
//
// Full-size synthetic PaliGemma checkpoints (seeded random weights, made by models/synthetic/make-checkpoint.mjs,
// never committed) converted by pali; then, in the same run: llama.cpp's llama-bench built from the same pinned
// source and linked to the same ggml/libllama libraries as pali, pali itself, transformers on torch CPU (when
// the reference venv exists), and the machine's limits. Writes benchmarks/results/<date>-<host>.json and the
// tables in benchmarks/README.md.
//
// Quick mode: PaliGemma 1 3B-224 at q4_k_m (and bf16 on CPUs with AVX512_BF16), two repetitions, with
// transformers bf16 and fp32 beside it when the reference venv exists (.venv-ref; --no-transformers skips them),
// so every run carries its own baseline.
// Full mode: PaliGemma 1 3B-224 at q4_k_m, q8_0 and f16 with transformers bf16/fp32 beside it; PaliGemma 2
// 3B-224 at q4_k_m, q8_0 and f16; PaliGemma 1 3B at 448 (everything) and 896 (image encode) at q4_k_m.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { cpus, hostname, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { autoMmprojType, convertCheckpoint } from "@pali/convert";
import { loadNative, systemInfo } from "@pali/core";
import { getNumber, readGGUF } from "@pali/gguf";
import { matmulRate, memoryBandwidth } from "./machine.mjs";
import { boundDecodes, writeReport } from "./report.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const cache = join(root, "benchmarks", ".cache");
// `pnpm bench -- --quick` hands the "--" through to the script.
const args = process.argv.slice(2).filter((a, i) => !(i === 0 && a === "--"));
const { values } = parseArgs({
  args,
  options: {
    quick: { type: "boolean" },
    "no-transformers": { type: "boolean" },
    threads: { type: "string" },
    setups: { type: "string" },
    prepare: { type: "boolean" },
    family: { type: "string" },
    tokens: { type: "string", default: "16" },
  },
});
const quick = values.quick === true;
const threads = Number(values.threads ?? systemInfo().defaultThreads);
const log = (m) => process.stderr.write(`bench: ${new Date().toISOString().slice(11, 19)} ${m}\n`);
mkdirSync(cache, { recursive: true });

const allTypes = ["q4_k_m", "q8_0", "f16"];
// The image encoder at the type `pali convert --mmproj-type auto` picks for this CPU (autoMmprojType: bf16 with
// AVX512_BF16 and no AMX, q8_0 on other x86 CPUs with AVX2, else f16; weights.mjs and gemm.mjs measure why).
const mmprojType = autoMmprojType(systemInfo().cpuFeatures);
// Quick mode adds the bf16 decoder where pali's bf16 product takes its prefill (gemm_backend.cpp: AVX512_BF16).
const quickTypes = loadNative().gemmKernel("bf16", 2048) === "avx512-bf16" ? ["q4_k_m", "bf16"] : ["q4_k_m"];
const setups = (
  quick
    ? [{ name: "pg1-3b-224", model: "pg1-3b", resolution: 224, types: quickTypes, reps: 2, transformers: true }]
    : [
        { name: "pg1-3b-224", model: "pg1-3b", resolution: 224, types: allTypes, reps: 3, transformers: true, extras: true },
        { name: "pg2-3b-224", model: "pg2-3b", resolution: 224, types: allTypes, reps: 3 },
        { name: "pg1-3b-448", model: "pg1-3b", resolution: 448, types: ["q4_k_m"], reps: 2 },
        { name: "pg1-3b-896", model: "pg1-3b", resolution: 896, types: ["q4_k_m"], reps: 2, encodeOnly: true },
      ]
).filter((s) => !values.setups || values.setups.split(",").includes(s.name));

/** The HF checkpoint folder (written once) and its conversion at `type` (converted once). */
async function weights(setup, type) {
  const checkpoint = join(cache, setup.name);
  if (!existsSync(join(checkpoint, "config.json"))) {
    log(`writing the synthetic ${setup.name} checkpoint (~6 GB)`);
    const args = ["--out", checkpoint, "--model", setup.model, "--resolution", String(setup.resolution)];
    execFileSync(process.execPath, [join(root, "models", "synthetic", "make-checkpoint.mjs"), ...args], { stdio: "inherit" });
  }
  const model = join(cache, `${setup.name}-${type}.gguf`);
  const mmproj = join(cache, `mmproj-${setup.name}-${mmprojType}.gguf`);
  if (!existsSync(model) || !existsSync(mmproj)) {
    log(`converting ${setup.name} at ${type}`);
    const t = performance.now();
    await convertCheckpoint({ input: checkpoint, outDir: cache, type, mmprojType, name: setup.name, force: true });
    log(`converted in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  return { checkpoint, model, mmproj, bytes: statSync(model).size, mmprojBytes: statSync(mmproj).size };
}

/** FLOPs of one image through SigLIP and the projector, from the mmproj's hyperparameters (matrix products and
 * attention; norms and activations are noise). */
function encodeFlops(mmproj) {
  const n = (k) => getNumber(mmproj, `clip.vision.${k}`);
  const d = n("embedding_length");
  const ff = n("feed_forward_length");
  const layers = n("block_count");
  const patch = n("patch_size");
  const tokens = (n("image_size") / patch) ** 2;
  const perLayer = tokens * 2 * (4 * d * d + 2 * d * ff) + 4 * tokens * tokens * d;
  return layers * perLayer + tokens * 2 * (3 * patch * patch) * d + tokens * 2 * d * n("projection_dim");
}

/** The matmul rate that bounds a decoder file: its main weight type's rate (q4_k_m files are mostly q4_K). */
const rateType = { q4_k_m: "q4_K", q8_0: "q8_0", f16: "f16", bf16: "bf16", f32: "f32" };

// ---- llama-bench, from the same source and linked to the same libraries ----------------------------------
const nativeOut = join(root, "native", "build", "Release");
const llamaSrc = join(root, "native", "vendor", "llama.cpp");
const llamaBench = join(cache, "llama-bench");
if (!existsSync(llamaBench)) {
  log("building llama-bench against pali's ggml/libllama");
  const libs = (n) =>
    `-l:${execFileSync("sh", ["-c", `ls ${nativeOut} | grep -E '^${n}$' | head -1`], { encoding: "utf8" }).trim()}`;
  execFileSync(
    "g++",
    [
      "-std=c++17",
      "-O2",
      "-DNDEBUG",
      "-o",
      llamaBench,
      join(llamaSrc, "tools", "llama-bench", "llama-bench.cpp"),
      join(llamaSrc, "tools", "llama-bench", "main.cpp"),
      `-I${join(llamaSrc, "include")}`,
      `-I${join(llamaSrc, "ggml", "include")}`,
      `-I${join(llamaSrc, "common")}`,
      `-I${join(llamaSrc, "vendor")}`,
      `-L${nativeOut}`,
      libs("libllama\\..*so"),
      libs("libggml\\..*so"),
      "-lggml-base",
      "-lllama-common",
      `-Wl,-rpath,${nativeOut}`,
      "-pthread",
    ],
    { stdio: "inherit" },
  );
}

if (values.family) {
  const { runFamily } = await import("./family.mjs");
  await runFamily({ name: values.family, threads, tokens: Number(values.tokens), llamaBench });
  process.exit(0);
}

if (values.prepare) {
  // --prepare: write and convert every model of the chosen setups, measure nothing
  for (const setup of setups) for (const type of setup.types) await weights(setup, type);
  log("weights ready");
  process.exit(0);
}

// ---- the machine --------------------------------------------------------------------------------------------
log("measuring memory read bandwidth and the matrix-product rates");
const machine = {
  host: hostname(),
  cpu: cpus()[0]?.model ?? "unknown",
  cores: threads,
  memoryGiB: totalmem() / 2 ** 30,
  bandwidthGBs: await memoryBandwidth(threads),
  matmulGflops: await matmulRate(threads),
};
machine.bandwidthSamples = [machine.bandwidthGBs];
log(`bandwidth ${machine.bandwidthGBs.toFixed(1)} GB/s, matmul ${JSON.stringify(machine.matmulGflops)}`);

const results = { date: new Date().toISOString(), quick, machine, system: systemInfo(), setups: {} };
for (const setup of setups) {
  const runs = {};
  results.setups[setup.name] = { resolution: setup.resolution, version: setup.model.startsWith("pg2") ? 2 : 1, runs };
  for (const type of setup.types) {
    const m = await weights(setup, type);
    const file = await readGGUF(m.model);
    const mmprojFile = await readGGUF(m.mmproj);
    const textBytes = file.tensors.reduce((n, t) => n + t.byteSize, 0);
    const textParams = file.tensors.filter((t) => t.name.startsWith("blk.")).reduce((n, t) => n + t.elementCount, 0);

    // This machine's bandwidth moves with its neighbours' load (34–58 GB/s seen in one hour): measured again
    // before each model; the highest figure of the run is the machine's limit and bounds every decode.
    const bandwidthGBs = await memoryBandwidth(threads);
    machine.bandwidthSamples.push(bandwidthGBs);
    log(`pali, ${setup.name} at ${type} (read bandwidth now ${bandwidthGBs.toFixed(1)} GB/s)`);
    const args = [join(here, "pali-run.mjs"), "--model", m.model, "--mmproj", m.mmproj, "--reps", String(setup.reps)];
    args.push("--threads", String(threads));
    if (setup.extras) args.push("--extras");
    if (setup.encodeOnly) args.push("--encode-only");
    const run = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 24 });
    if (run.status !== 0) throw new Error(`pali-run failed: ${run.stderr}`);
    const pali = JSON.parse(run.stdout.trim().split("\n").at(-1));

    const encodeBoundMs = (encodeFlops(mmprojFile) / (machine.matmulGflops[mmprojType] * 1e9)) * 1000;
    const entry = {
      files: { modelBytes: m.bytes, mmprojBytes: m.mmprojBytes, textTensorBytes: textBytes },
      pali,
      bounds: { encodeMs: encodeBoundMs },
      ratios: {
        encodeVsFlopBound: encodeBoundMs / pali.imageEncodeMs.median,
        // pali-run loads the whole model (decoder too) even to measure the encode alone
        peakRssVsFiles: pali.peakRssBytes / (m.bytes + m.mmprojBytes),
      },
    };
    if (!setup.encodeOnly) {
      // llama-bench on the same decoder file, flash attention off as in pali (it slows the CPU prefill): the
      // prefix length as one prompt, and 32 tokens generated after a context of that length, as pali decodes
      const n = String(pali.prefillTokens);
      log(`llama-bench, ${setup.name} at ${type} (pp${n}, tg32 @ d${n})`);
      const llama = (args) => {
        const all = ["-m", m.model, ...args, "-t", String(threads), "-r", String(setup.reps), "-fa", "0", "-o", "json"];
        const lb = spawnSync(llamaBench, all, { cwd: nativeOut, encoding: "utf8", maxBuffer: 1 << 24 });
        if (lb.status !== 0) throw new Error(`llama-bench failed: ${lb.stderr}`);
        return JSON.parse(lb.stdout)[0];
      };
      const pp = llama(["-p", n, "-n", "0"]);
      const tg = llama(["-p", "0", "-n", "32", "-d", n]);
      // Prefill is matrix products, 2 FLOPs per weight per token (attention over ~300 tokens adds under 1%);
      // the decode bound needs the whole run's bandwidth samples (boundDecodes, at the end).
      const flopRate = machine.matmulGflops[rateType[type]] * 1e9;
      entry.llamaBench = { ppTokPerS: pp.avg_ts, ppStd: pp.stddev_ts, tgTokPerS: tg.avg_ts, tgStd: tg.stddev_ts };
      entry.bounds.bandwidthGBs = bandwidthGBs;
      entry.bounds.prefillTokPerS = flopRate / (2 * textParams);
      Object.assign(entry.ratios, {
        prefillVsLlamaBench: pali.prefillTokPerS.median / pp.avg_ts,
        decodeVsLlamaBench: pali.decodeTokPerS.median / tg.avg_ts,
        prefillVsFlopBound: pali.prefillTokPerS.median / entry.bounds.prefillTokPerS,
      });
    }
    if (!setup.encodeOnly && type === "q4_k_m" && setup.name === "pg1-3b-224") {
      // continuous batching: aggregate decode at 1, 2, 4, 8 sequences, beside llama-batched-bench
      log(`batched decode, ${setup.name} at ${type} (pali and llama-batched-bench)`);
      const bargs = [join(here, "batched.mjs"), "--model", m.model, "--threads", String(threads), "--reps", String(setup.reps)];
      const b = spawnSync(process.execPath, bargs, { encoding: "utf8", maxBuffer: 1 << 24 });
      if (b.status !== 0) throw new Error(`batched.mjs failed: ${b.stderr.slice(-2000)}`);
      entry.batched = JSON.parse(b.stdout.trim().split("\n").at(-1));
    }
    runs[type] = entry;
    log(JSON.stringify(entry.ratios));
  }

  // transformers on torch CPU, on the same checkpoint
  const python = join(root, ".venv-ref", "bin", "python");
  if (setup.transformers && !values["no-transformers"] && existsSync(python)) {
    for (const dtype of ["bfloat16", "float32"]) {
      log(`transformers ${dtype}, ${setup.name}`);
      const hfArgs = [join(here, "hf_bench.py"), join(cache, setup.name), dtype, String(threads), "32"];
      const r = spawnSync(python, hfArgs, { encoding: "utf8", maxBuffer: 1 << 24 });
      if (r.status === 0) results.setups[setup.name][`transformers_${dtype}`] = JSON.parse(r.stdout.trim().split("\n").at(-1));
      else log(`transformers ${dtype} failed: ${r.stderr.slice(-500)}`);
    }
  }
}

boundDecodes(results);
const day = results.date.slice(0, 10);
const out = join(root, "benchmarks", "results", `${day}-${machine.host}${quick ? "-quick" : ""}.json`);
writeFileSync(out, `${JSON.stringify(results, null, 1)}\n`);
writeReport(results, join(root, "benchmarks", "README.md"));
log(`wrote ${out} and benchmarks/README.md`);
