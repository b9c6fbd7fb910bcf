/**
 * Labeling across machines on a real redis-server: workers as `pali worker` processes, the producer as
 * `pali label --redis`, one worker killed with SIGKILL mid-run; and the retry rules with a scripted model.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PaliError } from "@pali/core";
import { findImages, LabelJournal, type LabelRecord, PaliGemma, planLabels } from "@pali/sdk";
import { QueueEvents } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedis, LabelWorker, labelThroughQueue } from "../src/index.js";
import { type RedisServer, startRedis } from "./redis.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const bin = join(root, "packages", "cli", "dist", "bin.js");
const demo = join(root, "models", "demo");
const model = join(demo, "pali-demo-q8_0.gguf");

let redis: RedisServer;
let dir: string;
beforeAll(async () => {
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), "pali-queue-"));
});
afterAll(async () => {
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function readRecords(path: string): Promise<LabelRecord[]> {
  const text = await readFile(path, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  return text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as LabelRecord);
}

interface Proc {
  child: ChildProcess;
  lines: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function pali(args: string[]): Proc {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let rest = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split("\n");
    rest = parts.pop() ?? "";
    lines.push(...parts);
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      if (code !== 0 && signal === null) console.error(`pali ${args[0]} exited ${code}: ${stderr}`);
      resolve({ code, signal });
    }),
  );
  return { child, lines, exit };
}

async function until(check: () => boolean, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("pali label --redis with pali worker", () => {
  it("three workers, one killed -9 mid-run: all 100 results exactly once, equal to the local run", async () => {
    const images = await findImages(["models/demo/heldout"], root);
    expect(images).toHaveLength(100);
    const spec = { task: "detect" as const, labels: "circle ; square ; triangle" };
    const local = new Map<string, LabelRecord>();
    // One sequence on both sides: with continuous batching a result depends (within rounding, and at near-ties in
    // its tokens) on which requests shared its decode steps, and this test asks for equality.
    {
      await using pg = await PaliGemma.load({ model, threads: 1, parallel: 1 });
      for await (const r of pg.labelImages(
        images.map((i) => join(root, i)),
        spec,
      ))
        local.set(r.image, r);
    }

    const queue = "kill-test";
    // The killed worker's jobs in flight come back through BullMQ's stalled-job check.
    const events = new QueueEvents(queue, { connection: await connectRedis(redis.url) });
    const stalled: string[] = [];
    events.on("stalled", ({ jobId }) => stalled.push(jobId));
    await events.waitUntilReady();
    const workerArgs = [
      "worker",
      "--redis",
      redis.url,
      "--queue",
      queue,
      "-m",
      model,
      "--threads",
      "1",
      "--parallel",
      "1",
      "--stall-timeout",
      "2000",
      "--json",
    ];
    const workers = [pali(workerArgs), pali(workerArgs), pali(workerArgs)];
    const out = join(dir, "queued.jsonl");
    const producer = pali([
      "label",
      "models/demo/heldout",
      "--task",
      "detect",
      "-l",
      spec.labels,
      "--out",
      out,
      "--redis",
      redis.url,
      "--queue",
      queue,
      "--json",
    ]);
    const victim = workers[0] as Proc;
    await until(() => victim.lines.length >= 5 || victim.child.exitCode !== null, 120_000, "the first worker's fifth job");
    victim.child.kill("SIGKILL");
    expect((await victim.exit).signal).toBe("SIGKILL");
    const done = await producer.exit;
    expect(done.code).toBe(0);
    const summary = JSON.parse(producer.lines.at(-1) as string) as { labeled: number; failed: number; total: number };
    expect(summary).toMatchObject({ total: 100, labeled: 100, failed: 0 });
    // The survivors finish what they hold and stop on SIGTERM with status 0.
    for (const w of workers.slice(1)) w.child.kill("SIGTERM");
    for (const w of workers.slice(1)) expect(await w.exit).toEqual({ code: 0, signal: null });

    const records = await readRecords(out);
    expect(records).toHaveLength(100);
    expect(new Set(records.map((r) => r.image)).size).toBe(100);
    for (const r of records) {
      const expected = local.get(join(root, r.image));
      expect(expected, r.image).toBeDefined();
      expect("result" in r && r.result, r.image).toEqual(expected && "result" in expected && expected.result);
    }
    // Every worker did a share, the killed one included; together they did at least every image.
    const served = workers.map((w) => w.lines.length);
    await events.close();
    expect(stalled.length).toBeGreaterThan(0);
    expect(served.every((n) => n > 0)).toBe(true);
    expect(served.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(100);
    // Nothing is left in Redis for this run.
    const client = await connectRedis(redis.url);
    expect((await client.keys(`bull:${queue}:*`)).filter((k) => /:[0-9a-f]{40}(:|$)/.test(k))).toEqual([]);
    client.disconnect();
  }, 300_000);
});

describe("the retry rules", () => {
  it("retries transient errors with backoff, records a bad image once, sends bytes, and collects nothing twice", async () => {
    const calls = new Map<string, number>();
    const seenBytes: number[] = [];
    // A scripted model: "flaky" fails with ERR_IO twice, "bad" is not an image, the others are labeled.
    const scripted = {
      async label(item: { name: string; image: unknown }, plan: { task: string; prompt: string }): Promise<LabelRecord> {
        const n = (calls.get(item.name) ?? 0) + 1;
        calls.set(item.name, n);
        if (item.image instanceof Uint8Array) seenBytes.push(item.image.length);
        const head = { image: item.name, task: plan.task as "caption", prompt: plan.prompt };
        if (item.name.endsWith("flaky.png") && n < 3) return { ...head, error: { code: "ERR_IO", message: "NFS hiccup" } };
        if (item.name.endsWith("bad.png")) return { ...head, error: { code: "ERR_IMAGE_DECODE", message: "not an image" } };
        return { ...head, result: { width: 1, height: 1, text: `caption of ${item.name}` } };
      },
    } as unknown as PaliGemma;
    const names = ["a.png", "flaky.png", "bad.png", "b.png"].map((f) => join(dir, f));
    for (const [i, f] of names.entries()) await writeFile(f, Buffer.alloc(10 + i));
    const worker = await LabelWorker.start({ redis: redis.url, queue: "retry", model: scripted, stallTimeoutMs: 2000 });
    const plan = planLabels({ task: "caption" });
    const path = join(dir, "retry.jsonl");
    try {
      const journal = await LabelJournal.open(path, plan);
      const summary = await labelThroughQueue({
        redis: redis.url,
        queue: "retry",
        images: names,
        plan,
        journal,
        sendImages: true,
        backoffMs: 50,
      });
      await journal.close();
      expect(summary).toEqual({ enqueued: 4, collected: 4 });
      // Resumed: nothing to enqueue, nothing collected again.
      const again = await LabelJournal.open(path, plan);
      expect(await labelThroughQueue({ redis: redis.url, queue: "retry", images: names, plan, journal: again })).toEqual({
        enqueued: 0,
        collected: 0,
      });
      await again.close();
    } finally {
      await worker.close();
    }
    expect(calls.get(join(dir, "flaky.png"))).toBe(3);
    expect(calls.get(join(dir, "bad.png"))).toBe(1);
    expect(seenBytes.sort((a, b) => a - b).slice(0, 4)).toEqual([10, 11, 11, 11]);
    const records = await readRecords(path);
    expect(records.map((r) => r.image).sort()).toEqual([...names].sort());
    const byName = new Map(records.map((r) => [r.image, r]));
    expect(byName.get(join(dir, "flaky.png"))).toMatchObject({ result: { text: `caption of ${join(dir, "flaky.png")}` } });
    expect(byName.get(join(dir, "bad.png"))).toMatchObject({ error: { code: "ERR_IMAGE_DECODE" } });
  }, 60_000);

  it("an unreachable Redis is ERR_IO with what to do, not endless retries", async () => {
    const error = await connectRedis("redis://127.0.0.1:1", 1000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaliError);
    expect(error).toMatchObject({ code: "ERR_IO", message: expect.stringContaining("Start redis-server") });
    await expect(connectRedis("http://x")).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
  });
});
