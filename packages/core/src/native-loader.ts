/**
 * Which native addon this process loads: the candidates in order ($PALI_NATIVE_PATH, the repository's build,
 * the per-platform packages staged in the repository or installed), a child-process test load before a GPU
 * variant is trusted (a missing driver never takes this process down), and CPU as the fallback, said once.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join } from "node:path";
import { NativeBinaryError } from "./errors.js";
import {
  currentPlatform,
  type GpuBackend,
  isGpuOnly,
  type NativeVariant,
  nativeVariants,
  type Platform,
  platformLabel,
  variantsFor,
} from "./native-variants.js";

/** `true` is `"auto"` (the option was a boolean before). */
export type GpuPreference = "auto" | false | GpuBackend;

export interface NativeCandidate {
  /** the addon, pali.node */
  path: string;
  /** where ggml's CPU variants and GPU backends are loaded from (node-llama-cpp's bins folder for a package) */
  libDir: string;
  source: "env" | "workspace" | "repository" | "installed";
  /** the @pali/native-<variant> it is; null for a build of the repository or an explicit path */
  variant: NativeVariant | null;
  /** the GPU backend it carries, as far as its files tell */
  gpu: GpuBackend | null;
}

export interface FindOptions {
  env?: NodeJS.ProcessEnv;
  platform?: Platform;
  /** @pali/native's folder (its build/Release, and npm/<variant> in the repository); null when not installed */
  nativeDir?: string | null;
  /** folders that per-platform packages are resolved from (node_modules lookup, as require does) */
  searchFrom?: string[];
}

const backendNames: Record<GpuBackend, string> = { cuda: "CUDA", vulkan: "Vulkan", metal: "Metal" };

function nodeModulesDirs(from: string, request: string): string[] {
  return createRequire(join(from, "noop.js")).resolve.paths(request) ?? [];
}

/** node-llama-cpp's bins folder for a variant, looked up from the variant package's folder. */
export function llamaLibDir(packageDir: string, llama: string): string | null {
  for (const dir of nodeModulesDirs(packageDir, `@node-llama-cpp/${llama}`)) {
    const bins = join(dir, "@node-llama-cpp", llama, "bins", llama);
    if (existsSync(bins)) return bins;
  }
  return null;
}

/** The GPU backend a folder of ggml libraries holds (libggml-cuda.so, ggml-vulkan.dll, …). */
export function gpuOfFolder(dir: string): GpuBackend | null {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return null;
  }
  for (const gpu of ["cuda", "vulkan", "metal"] as const) {
    if (files.some((f) => f.startsWith(`libggml-${gpu}.`) || f.startsWith(`ggml-${gpu}.`))) return gpu;
  }
  return null;
}

function variantOfPackage(packageDir: string): NativeVariant | null {
  try {
    const pkg = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { pali?: { variant?: string } };
    return nativeVariants.find((v) => v.variant === pkg.pali?.variant) ?? null;
  } catch {
    return null;
  }
}

function packageCandidate(
  packageDir: string,
  v: NativeVariant,
  source: NativeCandidate["source"],
  problems: string[],
): NativeCandidate | null {
  const path = join(packageDir, "bin", "pali.node");
  if (!existsSync(path)) return null;
  const libDir = llamaLibDir(packageDir, v.llama);
  if (libDir === null) {
    problems.push(`@pali/native-${v.variant} is there but its dependency @node-llama-cpp/${v.llama} is not`);
    return null;
  }
  return { path, libDir, source, variant: v, gpu: v.gpu };
}

/** Every addon this process could load, best first; `problems` says why near misses were left out. */
export function findNativeCandidates(o: FindOptions = {}): { candidates: NativeCandidate[]; problems: string[] } {
  const env = o.env ?? process.env;
  const platform = o.platform ?? currentPlatform();
  const candidates: NativeCandidate[] = [];
  const problems: string[] = [];
  const override = env.PALI_NATIVE_PATH;
  if (override) {
    const packageDir = dirname(dirname(override));
    const v = variantOfPackage(packageDir);
    const libDir = (v && llamaLibDir(packageDir, v.llama)) ?? dirname(override);
    candidates.push({ path: override, libDir, source: "env", variant: v, gpu: v?.gpu ?? gpuOfFolder(libDir) });
  }
  const nativeDir = o.nativeDir;
  if (nativeDir) {
    const path = join(nativeDir, "build", "Release", "pali.node");
    if (existsSync(path)) {
      const libDir = dirname(path);
      candidates.push({ path, libDir, source: "workspace", variant: null, gpu: gpuOfFolder(libDir) });
    }
  }
  const fitting = variantsFor(platform);
  // GPU-only variants after the others, so that the first non-GPU candidate is the CPU fallback.
  const ordered = [...fitting.filter((v) => !isGpuOnly(v)), ...fitting.filter(isGpuOnly)];
  for (const v of ordered) {
    const found: NativeCandidate[] = [];
    if (nativeDir) {
      const c = packageCandidate(join(nativeDir, "npm", v.variant), v, "repository", problems);
      if (c) found.push(c);
    }
    for (const from of o.searchFrom ?? []) {
      if (found.length > 0) break;
      for (const dir of nodeModulesDirs(from, `@pali/native-${v.variant}`)) {
        const c = packageCandidate(join(dir, "@pali", `native-${v.variant}`), v, "installed", problems);
        if (c) {
          found.push(c);
          break;
        }
      }
    }
    candidates.push(...found.slice(0, 1));
  }
  return { candidates, problems: [...new Set(problems)] };
}

/** PATH with libDir first: Windows finds a DLL's dependencies there (rpath does it elsewhere). */
export function envWithLibDir(env: NodeJS.ProcessEnv, libDir: string): NodeJS.ProcessEnv {
  if (process.platform !== "win32") return env;
  const key = Object.keys(env).find((k) => k.toUpperCase() === "PATH") ?? "PATH";
  return { ...env, [key]: `${libDir}${delimiter}${env[key] ?? ""}` };
}

/**
 * Loads a candidate in a child process and lists its devices: null when it has a device of `backend`,
 * otherwise why not. A crash, a hang (timeout) or a missing driver stay in the child.
 */
export function testLoadInChild(c: NativeCandidate, backend: GpuBackend, timeoutMs = 30_000): string | null {
  const script =
    `const a = require(${JSON.stringify(c.path)}); a.backendInit(${JSON.stringify(c.libDir)});` +
    "process.stdout.write(JSON.stringify(a.systemInfo().devices.map((d) => d.backend)));";
  const r = spawnSync(process.execPath, ["-e", script], {
    env: envWithLibDir(process.env, c.libDir),
    encoding: "utf8",
    timeout: timeoutMs,
    stdio: ["ignore", "pipe", "pipe"],
    windowsHide: true,
  });
  if (r.error) return r.error.message;
  if (r.status !== 0) {
    const last = (r.stderr ?? "").trim().split("\n").filter(Boolean).pop() ?? "";
    return `its test load ${r.signal ? `was killed by ${r.signal}` : `exited with ${r.status}`}${last ? `: ${last}` : ""}`;
  }
  let backends: string[];
  try {
    backends = JSON.parse(r.stdout) as string[];
  } catch {
    return "its test load printed no device list";
  }
  return backends.includes(backendNames[backend])
    ? null
    : `it loads but finds no ${backendNames[backend]} device (driver missing, or only a CPU device${backend === "vulkan" ? "; GGML_VK_VISIBLE_DEVICES=0 admits one such as lavapipe" : ""})`;
}

export interface NativeSelection {
  candidate: NativeCandidate;
  /** the one line said on stderr when a GPU was wanted and the CPU is used instead; null otherwise */
  notice: string | null;
}

function label(c: NativeCandidate): string {
  if (c.variant) return `@pali/native-${c.variant.variant}`;
  return c.source === "env" ? `PALI_NATIVE_PATH (${c.path})` : `the repository's build (${c.path})`;
}

/** The platform, the packages that would fit it and the install command, for ERR_NATIVE_BINARY. */
export function noBinaryMessage(platform: Platform, problems: string[]): string {
  const fitting = variantsFor(platform);
  const lines = [`pali has no native addon for ${platformLabel(platform)}.`];
  if (fitting.length > 0) {
    const names = fitting.map((v) => `@pali/native-${v.variant}`).join(", ");
    const flags = `--os=${platform.os} --cpu=${platform.arch}${platform.libc ? ` --libc=${platform.libc}` : ""}`;
    lines.push(
      `The packages that fit: ${names}. They are optional dependencies of @pali/native, skipped when npm ran for another platform ` +
        `or with --omit=optional: reinstall with \`npm install ${flags} @pali/native\` (or add @pali/native-${fitting[0]?.variant} yourself).`,
    );
  } else {
    const all = nativeVariants.map((v) => `${v.os}-${v.cpu}${v.os === "linux" ? " (glibc)" : ""}`);
    lines.push(
      `Prebuilt addons exist for ${[...new Set(all)].join(", ")}. Elsewhere, build it from source in a clone of the repository: ` +
        "`PALI_LLAMA_MODE=source corepack pnpm --filter @pali/native build` (needs git, cmake and a C++ compiler), then set PALI_NATIVE_PATH.",
    );
  }
  for (const p of problems) lines.push(`(${p})`);
  return lines.join(" ");
}

/**
 * Picks the addon to load. `gpu`: false takes the first CPU candidate; "auto" the repository's build when
 * there is one (repository use), else the first GPU variant that passes its test load, else CPU; a named
 * backend the first of its variants that passes, else CPU with a notice. $PALI_NATIVE_PATH always wins.
 */
export function selectNative(
  candidates: NativeCandidate[],
  gpu: GpuPreference,
  platform: Platform,
  problems: string[],
  testLoad: (c: NativeCandidate, backend: GpuBackend) => string | null = testLoadInChild,
): NativeSelection {
  const explicit = candidates.find((c) => c.source === "env");
  if (explicit) return { candidate: explicit, notice: null };
  const base = candidates.find((c) => c.source === "workspace" || (c.variant !== null && !isGpuOnly(c.variant)));
  const gpuOnly = candidates.filter((c) => c.variant !== null && isGpuOnly(c.variant));
  const fallback = (why: string): NativeSelection => {
    const chosen = base ?? gpuOnly[0];
    if (!chosen) throw new NativeBinaryError(noBinaryMessage(platform, problems));
    return { candidate: chosen, notice: `pali: ${why}; running on the CPU with ${label(chosen)}` };
  };
  if (gpu === false) {
    if (!base) throw new NativeBinaryError(noBinaryMessage(platform, problems));
    return { candidate: base, notice: null };
  }
  if (gpu === "auto") {
    if (base?.source === "workspace") return { candidate: base, notice: null };
    const failures: string[] = [];
    for (const c of gpuOnly) {
      const why = testLoad(c, c.gpu as GpuBackend);
      if (why === null) return { candidate: c, notice: null };
      failures.push(`${label(c)}: ${why}`);
    }
    if (!base) throw new NativeBinaryError(noBinaryMessage(platform, [...problems, ...failures]));
    return failures.length > 0 ? fallback(`no GPU variant loads (${failures.join("; ")})`) : { candidate: base, notice: null };
  }
  // A named backend: the repository's build or the base variant may carry it (Metal on Apple silicon).
  if (base?.gpu === gpu) return { candidate: base, notice: null };
  const wanted = gpuOnly.filter((c) => c.gpu === gpu);
  const failures: string[] = [];
  for (const c of wanted) {
    const why = testLoad(c, gpu);
    if (why === null) return { candidate: c, notice: null };
    failures.push(`${label(c)}: ${why}`);
  }
  if (failures.length > 0) return fallback(`gpu "${gpu}" was asked for but ${failures.join("; ")}`);
  const fits = variantsFor(platform).filter((v) => v.gpu === gpu);
  return fallback(
    fits.length > 0
      ? `gpu "${gpu}" was asked for but ${fits.map((v) => `@pali/native-${v.variant}`).join(", ")} is not installed`
      : `gpu "${gpu}" was asked for but pali has no ${backendNames[gpu]} build for ${platformLabel(platform)}`,
  );
}
