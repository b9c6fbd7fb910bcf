/**
 * pullModel when things go wrong: each case ends in a typed error that says what to do, nothing ever sits
 * in the cache under a final name unless it is complete, and the next pull resumes what was downloaded.
 */
import { spawn } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  downloadsDir,
  type HubFileSystem,
  nodeFileSystem,
  type PullOptions,
  pullModel,
  type RegistryEntry,
} from "../src/index.js";
import { GOOD_TOKEN, MockHub, NO_ACCESS_TOKEN } from "./mock-hub.js";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "..", "..", "..", "models", "fixtures", "checkpoints");
const PG2 = "google/paligemma2-3b-pt-224";
const SHARD = "model-00001-of-00002.safetensors";
const registry: RegistryEntry[] = [
  {
    name: "pg2-tiny",
    repo: PG2,
    version: 2,
    params: "3B",
    resolution: 224,
    kind: "pt",
    goodFor: "tests",
    gated: true,
    tasks: [{ task: "caption", prompt: "caption {lang}" }],
  },
];

let work: string;
let hub: MockHub;
let count = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "pali-hub-bad-"));
  const llava = join(work, "llava");
  await cp(join(fixtures, "pg1-224"), llava, { recursive: true });
  const config = JSON.parse(await readFile(join(llava, "config.json"), "utf8"));
  await writeFile(join(llava, "config.json"), JSON.stringify({ ...config, model_type: "llava" }));
  hub = await new MockHub({
    [PG2]: { dir: join(fixtures, "pg2-224"), gated: true },
    "test/llava": { dir: llava },
    "test/llava-quiet": { dir: llava, listingConfig: false },
  }).start();
});
afterAll(async () => {
  await hub?.close();
  await rm(work, { recursive: true, force: true });
});

function opts(extra: PullOptions = {}): PullOptions & { cacheDir: string } {
  return {
    endpoint: hub.endpoint,
    token: GOOD_TOKEN,
    cacheDir: join(work, `cache-${++count}`),
    registry,
    type: "f16",
    retryDelayMs: 1,
    ...extra,
  } as PullOptions & { cacheDir: string };
}

/** Model folders a reader would take as complete (anything not starting with "."). */
async function finalDirs(cache: string, name = "pg2-tiny"): Promise<string[]> {
  return (await readdir(join(cache, "models", name)).catch(() => [] as string[])).filter((d) => !d.startsWith("."));
}

async function sizeOf(path: string): Promise<number | undefined> {
  return stat(path).then(
    (s) => s.size,
    () => undefined,
  );
}

/** The CDN saw `file` asked for whole, then from a byte in (0, upTo]. */
function expectResumedOnce(file: string, upTo: number): void {
  const ranges = cdnRequests(file).map((r) => r.range);
  expect(ranges).toHaveLength(2);
  expect(ranges[0]).toBeUndefined();
  const start = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? "")?.[1]);
  expect(start).toBeGreaterThan(0);
  expect(start).toBeLessThanOrEqual(upTo);
}

const cdnRequests = (file: string) => hub.requests.filter((r) => r.server === "cdn" && r.path.endsWith(`name=${file}`));

describe("pullModel on bad input", () => {
  it("a name that is neither in the registry nor a repo id", async () => {
    await expect(pullModel("pg2-tny", opts())).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringMatching(/Unknown model "pg2-tny".*Did you mean pg2-tiny\?.*pali ls --available/),
    });
    await expect(pullModel("", opts())).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(pullModel("pg2-tiny", opts({ type: "q3" as never }))).rejects.toMatchObject({
      message: expect.stringMatching(/Expected one of f32, .* for type but received "q3"/),
    });
  });

  it("a repo that does not exist (401 RepoNotFound without a token, 404 with one) and a revision that does not exist", async () => {
    await expect(pullModel("test/missing", opts({ token: false }))).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringMatching(/test\/missing was not found on .*or it is private and needs a token/),
    });
    await expect(pullModel("test/missing", opts())).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringMatching(/test\/missing was not found on http:\/\/127.0.0.1:\d+ \(HTTP 404\)\. Check the repo id/),
    });
    await expect(pullModel("pg2-tiny", opts({ revision: "v9" }))).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringMatching(/has no revision "v9".*--revision/),
    });
  });

  it("a gated repo without a token, with a token that has no access, with an invalid token", async () => {
    const o = opts({ token: false });
    await expect(pullModel("pg2-tiny", o)).rejects.toMatchObject({
      code: "ERR_AUTH",
      message: expect.stringMatching(/is gated.*accept the licence.*settings\/tokens.*HF_TOKEN/),
    });
    await expect(pullModel("pg2-tiny", { ...o, token: NO_ACCESS_TOKEN })).rejects.toMatchObject({
      code: "ERR_AUTH",
      message: expect.stringMatching(/token has no access.*HTTP 403.*accept the licence/),
    });
    await expect(pullModel("pg2-tiny", { ...o, token: "hf_typo" })).rejects.toMatchObject({
      code: "ERR_AUTH",
      message: expect.stringMatching(/rejected as invalid.*HF_TOKEN/),
    });
    expect(await finalDirs(o.cacheDir)).toEqual([]);
  });

  it("a repo that is not PaliGemma, told by the listing or by config.json, before any weight is fetched", async () => {
    hub.requests.length = 0;
    await expect(pullModel("test/llava", opts())).rejects.toMatchObject({
      code: "ERR_UNSUPPORTED_MODEL",
      message: expect.stringMatching(/"llava" model, not PaliGemma/),
    });
    expect(hub.requests.map((r) => r.path)).toEqual(["/api/models/test/llava/revision/main?blobs=true"]);
    hub.requests.length = 0;
    await expect(pullModel("test/llava-quiet", opts())).rejects.toMatchObject({ code: "ERR_UNSUPPORTED_MODEL" });
    expect(hub.requests.some((r) => r.path.endsWith(".safetensors"))).toBe(false);
  });

  it("no network: the Hub cannot be reached", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    await expect(pullModel("pg2-tiny", opts({ endpoint: `http://127.0.0.1:${port}` }))).rejects.toMatchObject({
      code: "ERR_IO",
      message: expect.stringMatching(new RegExp(`Could not reach http://127.0.0.1:${port} \\(ECONNREFUSED\\).*network`)),
    });
  });

  it("a connection dropped mid-file: the retry asks for the rest from the right byte", async () => {
    hub.requests.length = 0;
    hub.dropOnce.set(SHARD, 200_000);
    const result = await pullModel("pg2-tiny", opts());
    expect(result.cached).toBe(false);
    // The resume starts at the bytes that reached the file (fetch may drop the last ones it had buffered when
    // the connection fails); the SHA-256 check of the whole file proves the two parts join up.
    expectResumedOnce(SHARD, 200_000);
  });

  it("a CDN that ignores Range starts the file over; a 503 from the Hub is retried", async () => {
    hub.requests.length = 0;
    hub.dropOnce.set(SHARD, 200_000);
    hub.ignoreRange = true;
    hub.failOnce.set("tokenizer.model", 503);
    try {
      expect((await pullModel("pg2-tiny", opts())).cached).toBe(false);
    } finally {
      hub.ignoreRange = false;
    }
    expectResumedOnce(SHARD, 200_000);
    expect(hub.requests.filter((r) => r.path.endsWith("/tokenizer.model")).length).toBe(2);
  });

  it("a 5xx that does not go away, and a file the Hub no longer has", async () => {
    await expect(pullModel("pg2-tiny", opts({ retries: 0 }))).resolves.toBeDefined();
    hub.failOnce.set(SHARD, 500);
    await expect(pullModel("pg2-tiny", opts({ retries: 0 }))).rejects.toMatchObject({
      code: "ERR_IO",
      message: expect.stringMatching(/HTTP 500 for model-00001-of-00002.safetensors.*Try again later/),
    });
    hub.failOnce.set(SHARD, 404);
    await expect(pullModel("pg2-tiny", opts())).rejects.toMatchObject({
      code: "ERR_IO",
      message: expect.stringMatching(/404 for model-00001-of-00002.safetensors/),
    });
  });

  it("a file whose SHA-256 is not the one the Hub lists", async () => {
    hub.wrongSha.add(SHARD);
    const o = opts();
    try {
      await expect(pullModel("pg2-tiny", o)).rejects.toMatchObject({
        code: "ERR_MODEL_FORMAT",
        message: expect.stringMatching(
          new RegExp(`${SHARD} of ${PG2}@[0-9a-f]{12} failed verification: its SHA-256 is [0-9a-f]{64} but the Hub lists 0{64}`),
        ),
      });
    } finally {
      hub.wrongSha.clear();
    }
    const source = downloadsDir(o.cacheDir, PG2, hub.commit(PG2));
    expect(await sizeOf(join(source, SHARD))).toBeUndefined();
    expect(await sizeOf(join(source, `${SHARD}.incomplete`))).toBeUndefined();
    expect(await finalDirs(o.cacheDir)).toEqual([]);
  });

  it("an abort mid-download: ERR_ABORTED, the partial file kept, and the next pull resumes it", async () => {
    const o = opts();
    const controller = new AbortController();
    hub.slow = true;
    try {
      await expect(
        pullModel("pg2-tiny", {
          ...o,
          signal: controller.signal,
          onProgress: (p) => {
            if (p.phase === "download" && p.file === SHARD && p.transferred > 150_000) controller.abort();
          },
        }),
      ).rejects.toMatchObject({
        code: "ERR_ABORTED",
        message: expect.stringMatching(/The pull of pg2-tiny was interrupted. Run it again to resume/),
      });
    } finally {
      hub.slow = false;
    }
    const partial = join(downloadsDir(o.cacheDir, PG2, hub.commit(PG2)), `${SHARD}.incomplete`);
    const kept = (await sizeOf(partial)) ?? 0;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(663_696);
    expect(await finalDirs(o.cacheDir)).toEqual([]);

    hub.requests.length = 0;
    const result = await pullModel("pg2-tiny", o);
    expect(result.cached).toBe(false);
    expect(cdnRequests(SHARD).map((r) => r.range)).toEqual([`bytes=${kept}-`]);
    expect(await finalDirs(o.cacheDir)).toEqual(["f16"]);
  });

  it("Ctrl-C (SIGINT) in a process that is pulling: ERR_ABORTED, the lock released, the download resumable", async () => {
    const o = opts();
    const hubDist = pathToFileURL(join(here, "..", "dist", "index.js")).href;
    // What the CLI does: SIGINT aborts the pull's signal.
    const script = `
      import { pullModel } from ${JSON.stringify(hubDist)};
      const controller = new AbortController();
      process.once("SIGINT", () => controller.abort());
      let told = false;
      try {
        await pullModel("pg2-tiny", { ...${JSON.stringify({ ...o, registry })}, signal: controller.signal, onProgress(p) {
          if (!told && p.phase === "download" && p.file === ${JSON.stringify(SHARD)}) { told = true; console.log("downloading"); }
        } });
        process.exit(0);
      } catch (error) {
        console.error(error.code, error.message);
        process.exit(error.code === "ERR_ABORTED" ? 130 : 1);
      }`;
    hub.slow = true;
    hub.slowDelayMs = 20;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d) => String(d).includes("downloading") && resolve());
        child.once("exit", () => reject(new Error(`the pull ended before downloading: ${stderr}`)));
      });
      child.kill("SIGINT");
      const code = await new Promise((resolve) => child.once("exit", resolve));
      expect({ code, stderr }).toMatchObject({
        code: 130,
        stderr: expect.stringMatching(/^ERR_ABORTED The pull of pg2-tiny was interrupted/),
      });
    } finally {
      hub.slow = false;
      hub.slowDelayMs = 2;
      child.kill("SIGKILL");
    }
    expect(await readdir(join(o.cacheDir, "locks"))).toEqual([]);
    expect(await finalDirs(o.cacheDir)).toEqual([]);
    const partial = join(downloadsDir(o.cacheDir, PG2, hub.commit(PG2)), `${SHARD}.incomplete`);
    expect(await sizeOf(partial)).toBeGreaterThan(0);
    expect((await pullModel("pg2-tiny", o)).cached).toBe(false);
  });

  it("a disk that fills up: ERR_IO that says so, and the next pull resumes", async () => {
    const o = opts();
    let budget = 300_000;
    const full: HubFileSystem = {
      ...nodeFileSystem,
      async openSink(path, append) {
        const sink = await nodeFileSystem.openSink(path, append);
        return {
          async write(chunk) {
            budget -= chunk.length;
            if (budget < 0) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
            await sink.write(chunk);
          },
          close: () => sink.close(),
        };
      },
    };
    await expect(pullModel("pg2-tiny", { ...o, fs: full })).rejects.toMatchObject({
      code: "ERR_IO",
      message: expect.stringMatching(/The disk is full while writing .*incomplete. Free some space .*PALI_CACHE.*resumes/),
    });
    expect(await finalDirs(o.cacheDir)).toEqual([]);
    hub.requests.length = 0;
    expect((await pullModel("pg2-tiny", o)).cached).toBe(false);
    expect(cdnRequests(SHARD)[0]?.range).toMatch(/^bytes=\d+-$/);
  });

  it("too little free space for the weights: ERR_IO before any weight is fetched", async () => {
    hub.requests.length = 0;
    await expect(pullModel("pg2-tiny", opts({ fs: { freeBytes: async () => 1_000_000 } }))).rejects.toMatchObject({
      code: "ERR_IO",
      message: expect.stringMatching(/needs 0.9 MiB more in .* but only 1.0 MiB is free/),
    });
    expect(hub.requests.some((r) => r.path.endsWith(".safetensors"))).toBe(false);
  });
});
