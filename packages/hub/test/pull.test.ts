/**
 * pullModel against a mock Hub on 127.0.0.1 serving the tiny fixture checkpoints: the happy path end to end,
 * the cache (instant second pull, ls, rm, resolveModel), and every bad input the issue lists.
 */
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readGGUF } from "@pali/gguf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CacheManifest,
  downloadsDir,
  listCachedModels,
  type PullOptions,
  type PullProgress,
  pullModel,
  type RegistryEntry,
  removeCachedModel,
  resolveModel,
  sha256File,
} from "../src/index.js";
import { GOOD_TOKEN, MockHub } from "./mock-hub.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "models", "fixtures", "checkpoints");
const PG2 = "google/paligemma2-3b-pt-224";

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
  {
    name: "pg1-tiny",
    repo: "test/pg1-224",
    version: 1,
    params: "3B",
    resolution: 224,
    kind: "mix",
    goodFor: "tests",
    gated: false,
    tasks: [{ task: "caption", prompt: "caption {lang}" }],
    revision: "bfloat16",
  },
];

let work: string;
let hub: MockHub;
let cacheCount = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "pali-hub-"));
  const llava = join(work, "llava");
  await cp(join(fixtures, "pg1-224"), llava, { recursive: true });
  const config = JSON.parse(await readFile(join(llava, "config.json"), "utf8"));
  await writeFile(join(llava, "config.json"), JSON.stringify({ ...config, model_type: "llava" }));
  hub = await new MockHub({
    [PG2]: { dir: join(fixtures, "pg2-224"), gated: true },
    "test/pg1-224": { dir: join(fixtures, "pg1-224"), branches: ["bfloat16"] },
    "test/llava": { dir: llava },
    "test/llava-quiet": { dir: llava, listingConfig: false },
    "test/old-name": { dir: join(fixtures, "pg1-224"), renamedTo: "test/pg1-224" },
  }).start();
});
afterAll(async () => {
  await hub?.close();
  await rm(work, { recursive: true, force: true });
});

/** Options for a pull into a fresh cache (or `cacheDir`) from the mock Hub. */
function opts(extra: PullOptions = {}): PullOptions & { cacheDir: string } {
  return {
    endpoint: hub.endpoint,
    token: GOOD_TOKEN,
    cacheDir: join(work, `cache-${++cacheCount}`),
    registry,
    type: "f16",
    mmprojType: "f16",
    retryDelayMs: 1,
    ...extra,
  } as PullOptions & { cacheDir: string };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe("pullModel", () => {
  let o: ReturnType<typeof opts>;
  beforeAll(() => {
    o = opts();
  });

  it("pulls a gated PaliGemma 2 repo by its short name: verified, converted, cached with a manifest", async () => {
    hub.requests.length = 0;
    const result = await pullModel("pg2-tiny", o);
    expect(result).toMatchObject({ name: "pg2-tiny", repo: PG2, revision: hub.commit(PG2), type: "f16", cached: false });
    expect(result.model).toBe(join(o.cacheDir, "models", "pg2-tiny", "f16", "pg2-tiny-f16.gguf"));
    expect(result.mmproj).toBe(join(o.cacheDir, "models", "pg2-tiny", "f16", "mmproj-pg2-tiny-f16.gguf"));

    const manifest = JSON.parse(await readFile(join(result.dir, "manifest.json"), "utf8")) as CacheManifest;
    expect(manifest).toMatchObject({
      format: 1,
      name: "pg2-tiny",
      repo: PG2,
      revision: hub.commit(PG2),
      requestedRevision: "main",
    });
    expect(manifest.model).toEqual({
      file: "pg2-tiny-f16.gguf",
      size: (await stat(result.model)).size,
      sha256: await sha256File(result.model),
    });
    expect(manifest.mmproj.sha256).toBe(await sha256File(result.mmproj));
    expect(manifest.source.map((f) => f.path)).toContain("model-00002-of-00002.safetensors");
    expect(Number.isNaN(Date.parse(manifest.createdAt))).toBe(false);

    const gguf = await readGGUF(result.model);
    expect(gguf.metadata.get("general.architecture")).toMatchObject({ value: "gemma2" });
    expect(gguf.metadata.get("general.name")).toMatchObject({ value: "pg2-tiny" });

    // The listing asked for blobs; the token went to the Hub, never to the CDN the LFS files redirect to.
    expect(hub.requests[0]?.path).toBe(`/api/models/${PG2}/revision/main?blobs=true`);
    const cdn = hub.requests.filter((r) => r.server === "cdn");
    expect(cdn.map((r) => r.path.split("name=")[1]).sort()).toEqual([
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "tokenizer.model",
    ]);
    expect(cdn.every((r) => r.authorization === undefined)).toBe(true);
    expect(hub.requests.filter((r) => r.server === "hub").every((r) => r.authorization === `Bearer ${GOOD_TOKEN}`)).toBe(true);
    // Every file was fetched at the commit the listing pinned; README.md was not fetched at all.
    const resolves = hub.requests.filter((r) => r.path.includes("/resolve/"));
    expect(resolves.every((r) => r.path.includes(`/resolve/${hub.commit(PG2)}/`))).toBe(true);
    expect(resolves.some((r) => r.path.endsWith("README.md"))).toBe(false);
    // The safetensors are gone once converted, and so are the folders above them.
    expect(await exists(join(o.cacheDir, "downloads"))).toBe(false);
  });

  it("answers a second pull from the cache without a single request, by name, repo id or hf: URI", async () => {
    hub.requests.length = 0;
    const first = await pullModel("pg2-tiny", o);
    for (const name of ["pg2-tiny", PG2, `hf:${PG2}`, `https://huggingface.co/${PG2}`]) {
      const again = await pullModel(name, { ...o, endpoint: "http://127.0.0.1:1" });
      expect(again).toEqual({ ...first, cached: true });
    }
    expect(first.cached).toBe(true);
    expect(hub.requests).toEqual([]);
  });

  it("resolves names, cached folders and GGUF paths for the SDK", async () => {
    const pulled = await pullModel("pg2-tiny", o);
    expect(await resolveModel("pg2-tiny", o)).toEqual({
      model: pulled.model,
      mmproj: pulled.mmproj,
      cached: true,
      name: "pg2-tiny",
    });
    expect(await resolveModel(pulled.dir, o)).toMatchObject({ model: pulled.model, mmproj: pulled.mmproj });
    expect(await resolveModel(pulled.model, o)).toEqual({ model: pulled.model, mmproj: pulled.mmproj, cached: true });
    await expect(resolveModel(join(work, "nope.gguf"), o)).rejects.toMatchObject({ code: "ERR_IO" });
  });

  it("lists and removes cached models", async () => {
    const models = await listCachedModels(o);
    expect(models.map((m) => [m.name, m.type, m.repo])).toEqual([["pg2-tiny", "f16", PG2]]);
    expect(models[0]?.size).toBe((await stat(models[0]?.model ?? "")).size + (await stat(models[0]?.mmproj ?? "")).size);
    await expect(removeCachedModel("pg2-tiny", { ...o, type: "q8_0" })).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringMatching(/cached as f16, not q8_0/),
    });
    const removed = await removeCachedModel(PG2, { cacheDir: o.cacheDir, registry });
    expect(removed.map((m) => m.type)).toEqual(["f16"]);
    expect(await listCachedModels(o)).toEqual([]);
    expect(await exists(join(o.cacheDir, "models", "pg2-tiny"))).toBe(false);
    await expect(removeCachedModel("pg2-tiny", o)).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
  });

  it("pulls PaliGemma 1 from the registry's branch, keeps the source on request and reuses it for another type", async () => {
    const p = opts({ keepSource: true });
    const f16 = await pullModel("pg1-tiny", p);
    expect(f16).toMatchObject({ name: "pg1-tiny", revision: hub.commit("test/pg1-224"), cached: false });
    expect(hub.requests.some((r) => r.path === "/api/models/test/pg1-224/revision/bfloat16?blobs=true")).toBe(true);
    const source = downloadsDir(p.cacheDir, "test/pg1-224", hub.commit("test/pg1-224"));
    expect((await readdir(source)).sort()).toEqual(["added_tokens.json", "config.json", "model.safetensors", "tokenizer.model"]);

    hub.requests.length = 0;
    const q8 = await pullModel("test/pg1-224", { ...p, type: "q8_0" });
    expect(q8).toMatchObject({ type: "q8_0", cached: false });
    expect(hub.requests.map((r) => r.path)).toEqual(["/api/models/test/pg1-224/revision/bfloat16?blobs=true"]);
    // A commit counts as the revision it resolved to.
    expect(await pullModel("pg1-tiny", { ...p, revision: hub.commit("test/pg1-224").slice(0, 10) })).toMatchObject({
      cached: true,
    });
    expect((await listCachedModels(p)).map((m) => m.type)).toEqual(["f16", "q8_0"]);
    expect((await removeCachedModel("pg1-tiny", { cacheDir: p.cacheDir, registry })).map((m) => m.type)).toEqual(["f16", "q8_0"]);
    expect(await exists(source)).toBe(false);
  });

  it("follows a renamed repo's relative redirect with the token, and names a repo outside the registry owner--name", async () => {
    hub.requests.length = 0;
    const result = await pullModel("test/old-name", opts());
    expect(result.name).toBe("test--old-name");
    const renamed = hub.requests.filter((r) => r.server === "hub" && r.path.startsWith("/test/pg1-224/resolve/"));
    expect(renamed.length).toBeGreaterThan(0);
    expect(renamed.every((r) => r.authorization === `Bearer ${GOOD_TOKEN}`)).toBe(true);
  });

  it("runs one pull of a model at a time: a concurrent one waits and finds it cached", async () => {
    const p = opts();
    const waits: number[] = [];
    const onProgress = (e: PullProgress) => e.phase === "wait" && waits.push(e.pid);
    const [a, b] = await Promise.all([pullModel("pg1-tiny", { ...p, onProgress }), pullModel("pg1-tiny", { ...p, onProgress })]);
    expect([a.cached, b.cached].sort()).toEqual([false, true]);
    expect(a.model).toBe(b.model);
    expect(waits).toEqual([process.pid]);
  });
});
