#!/usr/bin/env node
// node benchmarks/src/label.mjs [--full MODEL.gguf] [--images N] [--max-tokens N]
//
// Labeling throughput, every figure from the same run:
// - the demo model over its 100 held-out images (detect): `pali label` in one process, then the same run
//   through BullMQ with 1 and 3 `pali worker` processes on a redis-server started here (loopback);
// - with --full (a full-size synthetic model, e.g. benchmarks/.cache/pg1-3b-224-q4_k_m.gguf from
//   `pnpm bench --quick --prepare`): SDK labelImages() captions of the demo's example photos, with and without
//   decoding the next images ahead (prefetch 2 / 0).
// Prints one JSON document; images/s exclude model loading where the process allows it (SDK), include it
// for whole commands (the CLI rows: what a user waits for).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { systemInfo } from "@pali/core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = join(root, "packages", "cli", "dist", "bin.js");
const demo = join(root, "models", "demo", "pali-demo-q8_0.gguf");
const { values } = parseArgs({
  options: { full: { type: "string" }, images: { type: "string" }, "max-tokens": { type: "string" } },
});
const log = (m) => process.stderr.write(`label-bench: ${m}\n`);
const work = mkdtempSync(join(tmpdir(), "pali-label-bench-"));

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`pali ${args[0]}: ${code} ${err}`))));
  });
}

async function demoRows() {
  const heldout = join(root, "models", "demo", "heldout");
  const task = ["--task", "detect", "-l", "circle ; square ; triangle"];
  const rows = [];
  for (const threads of [2, 1]) {
    const t0 = performance.now();
    await run([
      "label",
      heldout,
      ...task,
      "-m",
      demo,
      "--threads",
      String(threads),
      "--out",
      join(work, `local-${threads}.jsonl`),
      "--json",
    ]);
    rows.push({
      setup: `demo: pali label, 1 process, ${threads} threads`,
      imagesPerSecond: 100 / ((performance.now() - t0) / 1000),
    });
    log(`${rows.at(-1).setup}: ${rows.at(-1).imagesPerSecond.toFixed(2)} images/s`);
  }
  const port = await freePort();
  const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  await new Promise((r) => setTimeout(r, 500));
  const url = `redis://127.0.0.1:${port}`;
  try {
    for (const [n, threads] of [
      [1, 2],
      [3, 1],
    ]) {
      const queue = `bench-${n}`;
      const workers = Array.from({ length: n }, () =>
        spawn(process.execPath, [bin, "worker", "--redis", url, "--queue", queue, "-m", demo, "--threads", String(threads)], {
          stdio: "ignore",
        }),
      );
      await new Promise((r) => setTimeout(r, 1500)); // the workers load the model
      const t = performance.now();
      await run([
        "label",
        heldout,
        ...task,
        "--out",
        join(work, `queued-${n}.jsonl`),
        "--redis",
        url,
        "--queue",
        queue,
        "--json",
      ]);
      const row = {
        setup: `demo: pali label --redis, ${n} pali worker × ${threads} threads (workers loaded)`,
        imagesPerSecond: 100 / ((performance.now() - t) / 1000),
      };
      rows.push(row);
      log(`${n} workers: ${row.imagesPerSecond.toFixed(2)} images/s`);
      for (const w of workers) w.kill("SIGTERM");
      await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode === null ? w.once("exit", r) : r()))));
    }
  } finally {
    redis.kill("SIGTERM");
  }
  return rows;
}

async function fullRows(model) {
  const { PaliGemma } = await import("@pali/sdk");
  const dir = join(root, "models", "demo", "examples");
  const photos = readdirSync(dir)
    .filter((f) => f.endsWith(".png"))
    .map((f) => join(dir, f));
  const count = Number(values.images ?? photos.length);
  const images = Array.from({ length: count }, (_, i) => photos[i % photos.length]);
  const maxTokens = Number(values["max-tokens"] ?? 16);
  const pg = await PaliGemma.load({ model });
  const rows = [];
  try {
    await pg.caption(images[0], { maxTokens: 2 }); // warm-up
    for (const prefetch of [0, 2, 0, 2]) {
      const t = performance.now();
      for await (const r of pg.labelImages(images, { task: "caption", maxTokens }, { prefetch }))
        if ("error" in r) throw new Error(r.error.message);
      const s = (performance.now() - t) / 1000;
      rows.push({
        setup: `full-size ${model.split("/").pop()}: labelImages, prefetch ${prefetch}`,
        images: count,
        maxTokens,
        seconds: s,
        imagesPerSecond: count / s,
      });
      log(`${rows.at(-1).setup}: ${(count / s).toFixed(3)} images/s`);
    }
  } finally {
    await pg.dispose();
  }
  return rows;
}

try {
  if (spawnSync("redis-server", ["--version"]).status !== 0)
    throw new Error("redis-server is needed: apt-get install -y redis-server");
  const rows = [...(await demoRows()), ...(values.full ? await fullRows(values.full) : [])];
  process.stdout.write(
    `${JSON.stringify({ date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: cpus().length, features: Object.keys(systemInfo().cpuFeatures), rows }, null, 2)}\n`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
