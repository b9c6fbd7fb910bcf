#!/usr/bin/env node
// pnpm bench [--quick] [--no-transformers]
//
// Full-size synthetic PaliGemma 1 3B-224 weights (seeded random, made by models/synthetic/make-checkpoint.mjs,
// never committed) converted by pali at q4_k_m (and q8_0, f16 in the full run); then, in the same run:
// llama.cpp's llama-bench built from the same pinned source and linked to the same ggml/libllama libraries
// as pali, pali itself, transformers on torch CPU (when the reference venv exists), and the machine's
// limits. Writes benchmarks/results/<date>-<host>.json and the table in benchmarks/README.md.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { cpus, hostname, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { convertCheckpoint } from "@pali/convert";
import { systemInfo } from "@pali/core";
import { readGGUF } from "@pali/gguf";
import { matmulRate, memoryBandwidth } from "./machine.mjs";
import { writeReport } from "./report.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const cache = join(root, "benchmarks", ".cache");
const { values } = parseArgs({
  options: { quick: { type: "boolean" }, "no-transformers": { type: "boolean" }, threads: { type: "string" } },
});
const quick = values.quick === true;
const threads = Number(values.threads ?? systemInfo().defaultThreads);
const types = quick ? ["q4_k_m"] : ["q4_k_m", "q8_0", "f16"];
const reps = quick ? 2 : 3;
const log = (m) => process.stderr.write(`bench: ${m}\n`);
mkdirSync(cache, { recursive: true });

// ---- weights -----------------------------------------------------------------------------------------
const checkpoint = join(cache, "pg1-3b-224");
if (!existsSync(join(checkpoint, "config.json"))) {
  log("writing the synthetic PaliGemma 1 3B-224 checkpoint (5.5 GB)");
  execFileSync(
    process.execPath,
    [join(root, "models", "synthetic", "make-checkpoint.mjs"), "--out", checkpoint, "--model", "pg1-3b"],
    { stdio: "inherit" },
  );
}
const models = {};
for (const type of types) {
  const model = join(cache, `pg1-3b-224-${type}.gguf`);
  const mmproj = join(cache, "mmproj-pg1-3b-224-f16.gguf");
  if (!existsSync(model) || !existsSync(mmproj)) {
    log(`converting at ${type}`);
    const t = performance.now();
    await convertCheckpoint({ input: checkpoint, outDir: cache, type, mmprojType: "f16", name: "pg1-3b-224", force: true });
    log(`converted in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  models[type] = { model, mmproj, bytes: statSync(model).size, mmprojBytes: statSync(mmproj).size };
}

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

// ---- the machine --------------------------------------------------------------------------------------------
log("measuring memory bandwidth and the matrix-product rate");
const machine = {
  host: hostname(),
  cpu: cpus()[0]?.model ?? "unknown",
  cores: threads,
  memoryGiB: totalmem() / 2 ** 30,
  bandwidthGBs: await memoryBandwidth(threads),
  matmulGflops: await matmulRate(threads),
};
log(`bandwidth ${machine.bandwidthGBs.toFixed(1)} GB/s, matmul ${JSON.stringify(machine.matmulGflops)}`);

const results = { date: new Date().toISOString(), quick, machine, system: systemInfo(), models: {} };
for (const [type, m] of Object.entries(models)) {
  const file = await readGGUF(m.model);
  const textBytes = file.tensors.reduce((n, t) => n + t.byteSize, 0);
  const textParams = file.tensors.filter((t) => t.name.startsWith("blk.")).reduce((n, t) => n + t.elementCount, 0);

  log(`pali at ${type}`);
  const args = [
    join(here, "pali-run.mjs"),
    "--model",
    m.model,
    "--mmproj",
    m.mmproj,
    "--reps",
    String(reps),
    "--threads",
    String(threads),
  ];
  if (!quick) args.push("--extras");
  const run = spawnSync(process.execPath, args, {
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  if (run.status !== 0) throw new Error(`pali-run failed: ${run.stderr}`);
  const pali = JSON.parse(run.stdout.trim().split("\n").at(-1));

  log(`llama-bench at ${type} (pp${pali.prefillTokens}, tg32)`);
  const lb = spawnSync(
    llamaBench,
    [
      "-m",
      m.model,
      "-p",
      String(pali.prefillTokens),
      "-n",
      "32",
      "-t",
      String(threads),
      "-r",
      String(reps),
      "-fa",
      "1",
      "-o",
      "json",
    ],
    {
      cwd: nativeOut,
      encoding: "utf8",
      maxBuffer: 1 << 24,
    },
  );
  if (lb.status !== 0) throw new Error(`llama-bench failed: ${lb.stderr}`);
  const rows = JSON.parse(lb.stdout);
  const pp = rows.find((r) => r.n_prompt > 0);
  const tg = rows.find((r) => r.n_gen > 0);

  // Bounds: decode reads every weight once per token; prefill and encode are matrix products.
  const decodeBound = (machine.bandwidthGBs * 1e9) / textBytes;
  const prefillFlopsPerToken = 2 * textParams;
  const flopRate = machine.matmulGflops.bf16 * 1e9;
  results.models[type] = {
    files: { modelBytes: m.bytes, mmprojBytes: m.mmprojBytes },
    pali,
    llamaBench: { ppTokPerS: pp.avg_ts, ppStd: pp.stddev_ts, tgTokPerS: tg.avg_ts, tgStd: tg.stddev_ts },
    ratios: {
      prefillVsLlamaBench: pali.prefillTokPerS.median / pp.avg_ts,
      decodeVsLlamaBench: pali.decodeTokPerS.median / tg.avg_ts,
      decodeVsBandwidthBound: pali.decodeTokPerS.median / decodeBound,
      prefillVsFlopBound: (pali.prefillTokPerS.median * prefillFlopsPerToken) / flopRate,
      encodeVsFlopBound: 220e9 / flopRate / (pali.imageEncodeMs.median / 1000),
      peakRssVsFiles: pali.peakRssBytes / (m.bytes + m.mmprojBytes),
    },
    bounds: { decodeTokPerS: decodeBound, prefillTokPerS: flopRate / prefillFlopsPerToken, encodeMs: (220e9 / flopRate) * 1000 },
  };
  log(JSON.stringify(results.models[type].ratios));
}

// ---- transformers on torch CPU ---------------------------------------------------------------------------
const python = join(root, ".venv-ref", "bin", "python");
if (!quick && !values["no-transformers"] && existsSync(python)) {
  for (const dtype of ["bfloat16", "float32"]) {
    log(`transformers ${dtype}`);
    const r = spawnSync(python, [join(here, "hf_bench.py"), checkpoint, dtype, String(threads), "32"], {
      encoding: "utf8",
      maxBuffer: 1 << 24,
    });
    if (r.status === 0) results[`transformers_${dtype}`] = JSON.parse(r.stdout.trim().split("\n").at(-1));
    else log(`transformers ${dtype} failed: ${r.stderr.slice(-500)}`);
  }
}

const day = results.date.slice(0, 10);
const out = join(root, "benchmarks", "results", `${day}-${machine.host}.json`);
writeFileSync(out, `${JSON.stringify(results, null, 1)}\n`);
writeReport(results, join(root, "benchmarks", "README.md"));
log(`wrote ${out} and benchmarks/README.md`);
