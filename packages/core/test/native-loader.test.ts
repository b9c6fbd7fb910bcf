/** The native loader's choice, on fake candidate folders (no addon is loaded), and its error text. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { findNativeCandidates, noBinaryMessage, selectNative } from "../src/native-loader.js";
import { nativeVariants, type Platform } from "../src/native-variants.js";

const root = mkdtempSync(join(tmpdir(), "pali-loader-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const linux: Platform = { os: "linux", arch: "x64", libc: "glibc" };
const touch = (path: string) => {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, "");
};

/** node_modules with the given @pali/native-<variant> packages and their @node-llama-cpp libraries */
function install(name: string, variants: string[], withLlama = true): string {
  const app = join(root, name);
  for (const variant of variants) {
    const v = nativeVariants.find((x) => x.variant === variant);
    if (!v) throw new Error(variant);
    const pkg = join(app, "node_modules", "@pali", `native-${variant}`);
    touch(join(pkg, "bin", "pali.node"));
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: `@pali/native-${variant}`, pali: { variant } }));
    if (withLlama) touch(join(app, "node_modules", "@node-llama-cpp", v.llama, "bins", v.llama, "libggml-base.so"));
  }
  return app;
}

describe("findNativeCandidates", () => {
  it("lists PALI_NATIVE_PATH, the repository build, then the variants for this platform, CPU before GPU", () => {
    const app = install("all", ["linux-x64-vulkan", "linux-x64", "linux-x64-cuda", "darwin-arm64"]);
    const nativeDir = join(root, "native");
    touch(join(nativeDir, "build", "Release", "pali.node"));
    const env = { PALI_NATIVE_PATH: join(root, "elsewhere", "pali.node") };
    const { candidates } = findNativeCandidates({ env, platform: linux, nativeDir, searchFrom: [app] });
    expect(candidates.map((c) => `${c.source}:${c.variant?.variant ?? "-"}`)).toEqual([
      "env:-",
      "workspace:-",
      "installed:linux-x64",
      "installed:linux-x64-cuda",
      "installed:linux-x64-vulkan",
    ]);
    const vulkan = candidates.at(-1);
    expect(vulkan?.libDir).toBe(join(app, "node_modules", "@node-llama-cpp", "linux-x64-vulkan", "bins", "linux-x64-vulkan"));
  });

  it("leaves out a variant whose node-llama-cpp package is missing, and says so", () => {
    // (darwin-x64: pnpm's NODE_PATH, which require also searches, holds the repository's linux-x64 libraries)
    const app = install("nollama", ["darwin-x64"], false);
    const mac: Platform = { os: "darwin", arch: "x64", libc: null };
    const { candidates, problems } = findNativeCandidates({ env: {}, platform: mac, nativeDir: null, searchFrom: [app] });
    expect(candidates.map((c) => c.path)).toEqual([]);
    expect(problems).toEqual(["@pali/native-darwin-x64 is there but its dependency @node-llama-cpp/mac-x64 is not"]);
  });

  it("finds nothing for musl: the variants are glibc only", () => {
    const app = install("musl", ["linux-x64"]);
    const musl: Platform = { os: "linux", arch: "x64", libc: "musl" };
    expect(findNativeCandidates({ env: {}, platform: musl, nativeDir: null, searchFrom: [app] }).candidates).toEqual([]);
  });
});

describe("selectNative", () => {
  const app = install("select", ["linux-x64", "linux-x64-cuda", "linux-x64-vulkan"]);
  const { candidates } = findNativeCandidates({ env: {}, platform: linux, nativeDir: null, searchFrom: [app] });
  const pick = (gpu: Parameters<typeof selectNative>[1], working: string[]) => {
    const tried: string[] = [];
    const s = selectNative(candidates, gpu, linux, [], (c) => {
      tried.push(c.variant?.variant ?? "?");
      return working.includes(c.variant?.variant ?? "") ? null : "no device";
    });
    return { variant: s.candidate.variant?.variant, notice: s.notice, tried };
  };

  it("auto: the first GPU variant that passes its test load", () => {
    expect(pick("auto", ["linux-x64-vulkan"])).toEqual({
      variant: "linux-x64-vulkan",
      notice: null,
      tried: ["linux-x64-cuda", "linux-x64-vulkan"],
    });
  });

  it("auto: the CPU, with one line naming each failure, when none passes", () => {
    const r = pick("auto", []);
    expect(r.variant).toBe("linux-x64");
    expect(r.notice).toBe(
      "pali: no GPU variant loads (@pali/native-linux-x64-cuda: no device; @pali/native-linux-x64-vulkan: no device); running on the CPU with @pali/native-linux-x64",
    );
  });

  it("false: the CPU variant, without test loads", () => {
    expect(pick(false, ["linux-x64-cuda"])).toEqual({ variant: "linux-x64", notice: null, tried: [] });
  });

  it("a named backend: only its variant is tried; the CPU when it fails or is missing", () => {
    expect(pick("vulkan", ["linux-x64-vulkan", "linux-x64-cuda"])).toEqual({
      variant: "linux-x64-vulkan",
      notice: null,
      tried: ["linux-x64-vulkan"],
    });
    expect(pick("cuda", []).notice).toMatch(
      /^pali: gpu "cuda" was asked for but @pali\/native-linux-x64-cuda: no device; running on the CPU/,
    );
    expect(pick("metal", []).notice).toBe(
      'pali: gpu "metal" was asked for but pali has no Metal build for linux-x64 (glibc); running on the CPU with @pali/native-linux-x64',
    );
  });

  it("the repository's build wins under auto; PALI_NATIVE_PATH always", () => {
    const nativeDir = join(root, "native-ws");
    touch(join(nativeDir, "build", "Release", "pali.node"));
    const found = findNativeCandidates({ env: {}, platform: linux, nativeDir, searchFrom: [app] }).candidates;
    expect(selectNative(found, "auto", linux, [], () => null).candidate.source).toBe("workspace");
    expect(selectNative(found, "vulkan", linux, [], () => null).candidate.variant?.variant).toBe("linux-x64-vulkan");
    const withEnv = findNativeCandidates({
      env: { PALI_NATIVE_PATH: "/x/pali.node" },
      platform: linux,
      nativeDir,
      searchFrom: [app],
    });
    expect(selectNative(withEnv.candidates, "cuda", linux, [], () => "never").candidate.source).toBe("env");
  });

  it("no candidate: ERR_NATIVE_BINARY naming the platform, the packages and the npm command", () => {
    let error: unknown;
    try {
      selectNative([], "auto", linux, []);
    } catch (e) {
      error = e;
    }
    expect((error as { code?: string }).code).toBe("ERR_NATIVE_BINARY");
    expect((error as Error).message).toBe(noBinaryMessage(linux, []));
    expect((error as Error).message).toContain("pali has no native addon for linux-x64 (glibc).");
    expect((error as Error).message).toContain(
      "@pali/native-linux-x64, @pali/native-linux-x64-cuda, @pali/native-linux-x64-vulkan",
    );
    expect((error as Error).message).toContain("npm install --os=linux --cpu=x64 --libc=glibc @pali/native");
    const freebsd = noBinaryMessage({ os: "freebsd", arch: "x64", libc: null }, []);
    expect(freebsd).toContain("pali has no native addon for freebsd-x64.");
    expect(freebsd).toContain("PALI_LLAMA_MODE=source");
  });
});

it("the variant table matches native/npm/*/package.json (written by native/scripts/variants.mjs)", () => {
  const npm = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "native", "npm");
  const version = JSON.parse(readFileSync(join(npm, "..", "package.json"), "utf8")).version;
  for (const v of nativeVariants) {
    const pkg = JSON.parse(readFileSync(join(npm, v.variant, "package.json"), "utf8"));
    expect(pkg.name).toBe(`@pali/native-${v.variant}`);
    expect(pkg.version).toBe(version);
    expect([pkg.os, pkg.cpu]).toEqual([[v.os], [v.cpu]]);
    expect(pkg.libc).toEqual(v.os === "linux" ? ["glibc"] : undefined);
    expect(pkg.dependencies).toEqual({ [`@node-llama-cpp/${v.llama}`]: "3.21.1" });
    expect(pkg.pali).toMatchObject({ variant: v.variant, gpu: v.gpu });
  }
});
