/** The registry file, name resolution, and where the endpoint, token and cache come from. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cacheDir, defaultRegistry, hubEndpoint, hubToken, parseRegistry, resolveModelRef } from "../src/index.js";

describe("the shipped registry (packages/hub/registry.json)", () => {
  const all = defaultRegistry();
  const registry = all.filter((e) => e.kind !== "ft"); // the fine-tunes: registry-ft.test.ts

  it("lists the official checkpoints as published: PaliGemma 1 pt 224/448/896 and mix 224/448, PaliGemma 2 pt and mix per size", () => {
    const names = registry.map((e) => e.name);
    expect(names.filter((n) => n.startsWith("pg1-"))).toEqual([
      "pg1-3b-pt-224",
      "pg1-3b-pt-448",
      "pg1-3b-pt-896",
      "pg1-3b-mix-224",
      "pg1-3b-mix-448",
    ]);
    for (const size of ["3b", "10b", "28b"]) {
      expect(names.filter((n) => n.startsWith(`pg2-${size}-`))).toEqual([
        `pg2-${size}-pt-224`,
        `pg2-${size}-pt-448`,
        `pg2-${size}-pt-896`,
        `pg2-${size}-mix-224`,
        `pg2-${size}-mix-448`,
      ]);
    }
    for (const e of registry) {
      expect(e.gated).toBe(true);
      const stem = e.version === 1 ? "paligemma" : "paligemma2";
      expect(e.repo).toBe(`google/${stem}-${e.params.toLowerCase()}-${e.kind}-${e.resolution}`);
      expect(e.name).toBe(`pg${e.version}-${e.params.toLowerCase()}-${e.kind}-${e.resolution}`);
      expect(e.goodFor.length).toBeGreaterThan(20);
      expect(e.revision).toBe(e.version === 1 ? "bfloat16" : undefined);
    }
  });

  it("rejects a malformed registry with the field that is wrong", () => {
    expect(() => parseRegistry({})).toThrow(/no models array/);
    expect(() => parseRegistry({ models: [{ ...registry[0], resolution: 300 }] })).toThrow(/models\[0\]\.resolution/);
    expect(() => parseRegistry({ models: [registry[0], registry[0]] })).toThrow(/appears twice/);
    expect(() => parseRegistry({ models: [{ ...registry[0], kind: "sft" }] })).toThrow(/models\[0\]\.kind/);
  });

  it("resolves short names, repo ids, hf: URIs and Hub URLs", () => {
    const want = { name: "pg2-3b-mix-448", repo: "google/paligemma2-3b-mix-448", revision: "main", known: true };
    for (const input of [
      "pg2-3b-mix-448",
      "PG2-3B-MIX-448",
      "google/paligemma2-3b-mix-448",
      "hf:google/paligemma2-3b-mix-448",
      "https://huggingface.co/google/paligemma2-3b-mix-448",
      "https://huggingface.co/google/paligemma2-3b-mix-448/tree/main",
    ])
      expect(resolveModelRef(input, registry)).toMatchObject(want);
    expect(resolveModelRef("pg1-3b-mix-224", registry)).toMatchObject({ revision: "bfloat16" });
    expect(resolveModelRef("pg1-3b-mix-224", registry, "main")).toMatchObject({ revision: "main" });
    expect(resolveModelRef("someone/paligemma-finetune", registry)).toEqual({
      name: "someone--paligemma-finetune",
      repo: "someone/paligemma-finetune",
      revision: "main",
      known: false,
    });
    expect(() => resolveModelRef("pg2-3b-mix-488", registry)).toThrow(/Did you mean pg2-3b-mix-448/);
    expect(() => resolveModelRef("../etc/passwd", registry)).toThrow(/Unknown model/);
  });
});

describe("configuration", () => {
  it("takes the endpoint from HF_ENDPOINT, without trailing slashes", () => {
    expect(hubEndpoint(undefined, {})).toBe("https://huggingface.co");
    expect(hubEndpoint(undefined, { HF_ENDPOINT: "https://hf-mirror.com/" })).toBe("https://hf-mirror.com");
    expect(hubEndpoint("http://127.0.0.1:8080", { HF_ENDPOINT: "https://hf-mirror.com" })).toBe("http://127.0.0.1:8080");
    expect(() => hubEndpoint(undefined, { HF_ENDPOINT: "ftp://x" })).toThrow(/HF_ENDPOINT/);
  });

  it("finds the token as huggingface_hub does: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pali-token-"));
    try {
      await writeFile(join(dir, "token"), "hf_from_file\n");
      const none = join(dir, "missing");
      expect(hubToken(undefined, { HF_TOKEN: " hf_env ", HF_HOME: dir })).toBe("hf_env");
      expect(hubToken(undefined, { HUGGING_FACE_HUB_TOKEN: "hf_legacy", HF_HOME: dir })).toBe("hf_legacy");
      expect(hubToken(undefined, { HF_HOME: dir })).toBe("hf_from_file");
      expect(hubToken(undefined, { HF_TOKEN_PATH: join(dir, "token"), HF_HOME: none })).toBe("hf_from_file");
      expect(hubToken(undefined, { HF_HOME: none })).toBeUndefined();
      expect(hubToken(false, { HF_TOKEN: "hf_env" })).toBeUndefined();
      expect(hubToken("hf_explicit", { HF_TOKEN: "hf_env" })).toBe("hf_explicit");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("puts the cache in PALI_CACHE or the platform's cache folder", () => {
    expect(cacheDir(undefined, { PALI_CACHE: "/data/pali" }, "linux")).toBe("/data/pali");
    expect(cacheDir(undefined, { XDG_CACHE_HOME: "/xdg" }, "linux")).toBe(join("/xdg", "pali"));
    expect(cacheDir(undefined, {}, "linux")).toBe(join(homedir(), ".cache", "pali"));
    expect(cacheDir(undefined, {}, "darwin")).toBe(join(homedir(), "Library", "Caches", "pali"));
    expect(cacheDir(undefined, { LOCALAPPDATA: "C:\\Users\\me\\AppData\\Local" }, "win32")).toBe(
      join("C:\\Users\\me\\AppData\\Local", "pali", "cache"),
    );
  });
});
