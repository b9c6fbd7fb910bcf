#!/usr/bin/env node
/**
 * The fuzz driver: splits seeds into batches over long-lived workers (worker.mjs), watches them for
 * signals and hangs, rebuilds and saves the input that killed one (crashes/<target>-<seed>.bin), restarts
 * it after that seed, and prints a JSON summary.
 *
 *   node packages/sdk/fuzz/run.mjs --cases 200000 --seed 1 --workers 2 [--targets decoder,mmproj,...]
 *
 * --cases is per target. Run long campaigns niced (nice -n 10): see README.md.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    cases: { type: "string", default: "1000" },
    seed: { type: "string", default: "1" },
    workers: { type: "string", default: "1" },
    batch: { type: "string", default: "500" },
    targets: { type: "string", default: "decoder,mmproj,mask,tokenizer,image" },
    "native-every": { type: "string", default: "25" },
    "deep-every": { type: "string", default: "40" },
    "hang-ms": { type: "string", default: "120000" },
    crashes: { type: "string", default: join(here, "crashes") },
    progress: { type: "boolean", default: false },
  },
});
const cases = Number(opts.cases);
const seed0 = Number(opts.seed) * 1_000_000_007;
const batchSize = Number(opts.batch);
const targets = opts.targets.split(",");
const started = Date.now();

/** Seeds are spread per target so that runs with different --seed never overlap. */
const queue = [];
for (let from = 0; from < cases; from += batchSize) {
  for (const target of targets) {
    const base = (seed0 + targets.indexOf(target) * 0x1000_0000 + from) >>> 0;
    queue.push({ target, from: base, to: base + Math.min(batchSize, cases - from) });
  }
}

const summary = { targets: {}, crashes: [], hangs: [], bugs: [], wallSeconds: 0 };
for (const t of targets) summary.targets[t] = { executions: 0, refused: {}, accepted: 0, native: 0, nativeResults: {} };

function merge(s) {
  const t = summary.targets[s.target];
  t.executions += s.executions;
  t.accepted += s.accepted;
  t.native += s.native;
  for (const [k, v] of Object.entries(s.refused)) t.refused[k] = (t.refused[k] ?? 0) + v;
  for (const [k, v] of Object.entries(s.nativeResults)) t.nativeResults[k] = (t.nativeResults[k] ?? 0) + v;
  for (const b of s.bugs) summary.bugs.push({ target: s.target, ...b });
}

async function saveCrash(kind, target, seed, how) {
  const { tsStep } = await import("./targets.mjs");
  const step = await tsStep(target, seed, 1);
  mkdirSync(opts.crashes, { recursive: true });
  const file = join(opts.crashes, `${target}-${seed}.bin`);
  if (step.bytes) writeFileSync(file, step.bytes);
  summary[kind].push({ target, seed, how, file });
  process.stderr.write(`fuzz: ${kind === "crashes" ? "crash" : "hang"} in ${target} at seed ${seed} (${how}), saved ${file}\n`);
}

function runWorker() {
  return new Promise((resolve) => {
    let child;
    let job;
    let lastNative;
    let buffered = "";
    let timer;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => child.kill("SIGKILL"), Number(opts["hang-ms"]));
    };
    const next = () => {
      job = queue.shift();
      if (job === undefined) {
        clearTimeout(timer);
        child.stdin.end();
        return;
      }
      lastNative = undefined;
      arm();
      child.stdin.write(
        `${JSON.stringify({ ...job, nativeEvery: Number(opts["native-every"]), deepEvery: Number(opts["deep-every"]) })}\n`,
      );
    };
    const start = () => {
      child = spawn(process.execPath, [join(here, "worker.mjs")], { stdio: ["pipe", "pipe", "inherit"] });
      buffered = "";
      child.stdout.on("data", (chunk) => {
        buffered += chunk;
        let nl = buffered.indexOf("\n");
        while (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.startsWith("n ")) {
            lastNative = Number(line.slice(2));
            arm();
          } else if (line.startsWith("{")) {
            merge(JSON.parse(line));
            if (opts.progress)
              process.stderr.write(`fuzz: ${job.target} ${job.from}..${job.to} done, ${queue.length} batches left\n`);
            next();
          }
          nl = buffered.indexOf("\n");
        }
      });
      child.on("exit", async (code, signal) => {
        clearTimeout(timer);
        if (job === undefined) return resolve();
        // The worker died inside a batch: the last native step's input did it (or it hung there).
        const seed = lastNative ?? job.from;
        const kind = signal === "SIGKILL" ? "hangs" : "crashes";
        await saveCrash(kind, job.target, seed, signal ?? `exit ${code}`);
        const done = seed + 1 - job.from;
        summary.targets[job.target].executions += done;
        if (seed + 1 < job.to) queue.unshift({ target: job.target, from: seed + 1, to: job.to });
        start();
        next();
      });
    };
    start();
    next();
  });
}

await Promise.all(Array.from({ length: Number(opts.workers) }, runWorker));
summary.wallSeconds = (Date.now() - started) / 1000;
summary.executions = Object.values(summary.targets).reduce((n, t) => n + t.executions, 0);
process.stdout.write(`${JSON.stringify(summary, null, 1)}\n`);
process.exitCode = summary.crashes.length + summary.hangs.length + summary.bugs.length > 0 ? 1 : 0;
