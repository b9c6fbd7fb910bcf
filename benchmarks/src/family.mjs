#!/usr/bin/env node
// node benchmarks/src/bench.mjs --family pg2-10b-224 [--threads N] [--tokens 16]
// (or this file directly: node benchmarks/src/family.mjs --family pg2-10b-224)
//
// One larger PaliGemma family at its real shapes, end to end, once: writes the synthetic checkpoint
// (models/synthetic/make-checkpoint.mjs, seeded random bf16 weights), converts it (q4_k_m decoder, bf16 mmproj),
// loads it with pali in its own process under /usr/bin/time -v and generates a short caption, then runs
// llama-bench on the same decoder file as the baseline. Records the conversion time, load time, peak RSS (both
// the process's own getrusage and /usr/bin/time's), image encode, prefill and decode tok/s in
// benchmarks/results/<date>-<host>-<family>.json. Big files stay in benchmarks/.cache (git-ignored).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { cpus, hostname, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { convertCheckpoint } from "@pali/convert";
import { systemInfo } from "@pali/core";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const cache = join(root, "benchmarks", ".cache");

/** The families this mode knows: make-checkpoint.mjs's model name, resolution, decoder type. */
export const families = {
  "pg2-10b-224": { model: "pg2-10b", resolution: 224, type: "q4_k_m", mmprojType: "bf16", gigabytes: 19 },
  "pg2-10b-448": { model: "pg2-10b", resolution: 448, type: "q4_k_m", mmprojType: "bf16", gigabytes: 19 },
  "pg2-3b-224": { model: "pg2-3b", resolution: 224, type: "q4_k_m", mmprojType: "bf16", gigabytes: 6 },
  // not run on the 24 GiB benchmark VM: 55 GB of bf16, a 16.5 GB q4_k_m decoder
  "pg2-28b-224": { model: "pg2-28b", resolution: 224, type: "q4_k_m", mmprojType: "bf16", gigabytes: 55 },
};

const log = (m) => process.stderr.write(`family: ${new Date().toISOString().slice(11, 19)} ${m}\n`);

/** /usr/bin/time -v's report: peak RSS in bytes and the wall time in seconds. */
function parseTimeV(stderr) {
  const kb = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/.exec(stderr);
  const seconds = wall?.[1]?.split(":").reduce((acc, part) => acc * 60 + Number(part), 0);
  return { peakRssBytes: kb ? Number(kb[1]) * 1024 : undefined, wallS: seconds };
}

export async function runFamily({ name, threads, tokens, llamaBench }) {
  const f = families[name];
  if (!f) throw new Error(`unknown --family ${name}; known: ${Object.keys(families).join(", ")}`);
  mkdirSync(cache, { recursive: true });
  const checkpoint = join(cache, name);
  const result = { date: new Date().toISOString(), family: name, ...f, threads, tokens };
  result.machine = { host: hostname(), cpu: cpus()[0]?.model ?? "unknown", memoryGiB: totalmem() / 2 ** 30 };
  result.system = systemInfo();

  if (!existsSync(join(checkpoint, "config.json"))) {
    log(`writing the synthetic ${name} checkpoint (~${f.gigabytes} GB of bf16)`);
    const t = performance.now();
    const args = ["--out", checkpoint, "--model", f.model, "--resolution", String(f.resolution)];
    execFileSync(process.execPath, [join(root, "models", "synthetic", "make-checkpoint.mjs"), ...args], { stdio: "inherit" });
    result.writeCheckpointS = (performance.now() - t) / 1000;
  }
  const model = join(cache, `${name}-${f.type}.gguf`);
  const mmproj = join(cache, `mmproj-${name}-${f.mmprojType}.gguf`);
  if (!existsSync(model) || !existsSync(mmproj)) {
    log(`converting ${name} at ${f.type} (mmproj ${f.mmprojType})`);
    const t = performance.now();
    await convertCheckpoint({ input: checkpoint, outDir: cache, type: f.type, mmprojType: f.mmprojType, name, force: true });
    result.convertS = (performance.now() - t) / 1000;
    log(`converted in ${result.convertS.toFixed(0)} s`);
  }
  result.files = { modelBytes: statSync(model).size, mmprojBytes: statSync(mmproj).size };

  // The machine is shared: each measurement records the 1-minute load average it started under (above the
  // core count, ggml's threads wait on descheduled peers and decode slows several-fold).
  result.loadAverage = {};
  log(`pali: load, encode, ${tokens}-token caption`);
  result.loadAverage.pali = loadavg()[0];
  const runArgs = [join(here, "pali-run.mjs"), "--model", model, "--mmproj", mmproj, "--reps", "1", "--tokens", String(tokens)];
  if (threads) runArgs.push("--threads", String(threads));
  const run = spawnSync("/usr/bin/time", ["-v", process.execPath, ...runArgs], { encoding: "utf8", maxBuffer: 1 << 24 });
  if (run.status !== 0) throw new Error(`pali-run failed: ${run.stderr.slice(-3000)}`);
  const pali = JSON.parse(run.stdout.trim().split("\n").at(-1));
  const time = parseTimeV(run.stderr);
  result.pali = {
    loadMs: pali.loadMs,
    imageEncodeMs: pali.imageEncodeMs.median,
    prefillTokens: pali.prefillTokens,
    prefillTokPerS: pali.prefillTokPerS.median,
    decodeTokPerS: pali.decodeTokPerS.median,
    timeToFirstTokenMs: pali.timeToFirstTokenMs.median,
    captionMs: pali.captionMs.median,
    peakRssBytes: pali.peakRssBytes,
    timeV: time,
  };
  log(JSON.stringify(result.pali));

  if (llamaBench && existsSync(llamaBench)) {
    const n = String(pali.prefillTokens);
    log(`llama-bench on the same decoder (pp${n}, tg${tokens} @ d${n}), one repetition`);
    const cwd = join(root, "native", "build", "Release");
    const bench = (extra) => {
      const all = ["-m", model, ...extra, "-r", "1", "-fa", "0", "-o", "json"];
      if (threads) all.push("-t", String(threads));
      const lb = spawnSync(llamaBench, all, { cwd, encoding: "utf8", maxBuffer: 1 << 24 });
      if (lb.status !== 0) throw new Error(`llama-bench failed: ${lb.stderr.slice(-2000)}`);
      return JSON.parse(lb.stdout)[0];
    };
    result.loadAverage.llamaBench = loadavg()[0];
    const pp = bench(["-p", n, "-n", "0"]);
    const tg = bench(["-p", "0", "-n", String(tokens), "-d", n]);
    result.llamaBench = { ppTokPerS: pp.avg_ts, tgTokPerS: tg.avg_ts };
    log(JSON.stringify(result.llamaBench));
  }

  const out = join(root, "benchmarks", "results", `${result.date.slice(0, 10)}-${hostname()}-${name}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
  log(`wrote ${out}`);
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { family: { type: "string" }, threads: { type: "string" }, tokens: { type: "string", default: "16" } },
  });
  if (!values.family) {
    console.error(`usage: family.mjs --family ${Object.keys(families).join("|")} [--threads N] [--tokens 16]`);
    process.exit(2);
  }
  const llamaBench = join(cache, "llama-bench");
  await runFamily({
    name: values.family,
    threads: values.threads ? Number(values.threads) : undefined,
    tokens: Number(values.tokens),
    llamaBench,
  });
}
