#!/usr/bin/env node
// Builds pali's native addon with cmake-js against the llama.cpp release shipped by the pinned
// node-llama-cpp package. Nothing is downloaded: the llama.cpp sources come from node-llama-cpp's git
// bundle, the prebuilt libraries from its per-platform packages.
//
// Environment:
//   PALI_CUDA=1 / PALI_METAL=1 / PALI_VULKAN=1   enable a GPU backend
//   PALI_LLAMA_MODE=prebuilt|source              force a mode (default: prebuilt where one fits)
//   PALI_BUILD_JOBS=N                            parallel compile jobs (default: CPU count)
//   GGML_NATIVE=OFF                              source mode: build for any CPU of this architecture
//   CMAKE_CUDA_ARCHITECTURES=90                  source mode with CUDA: the GPU architectures to build
//   PALI_CMAKE_DEFINES="K=V K2=V2"               more -D definitions for CMake (e.g. GGML_CUDA_NO_VMM=ON)
//   PALI_BUILD_DIR=build-x                       build folder (default: build; the repository's build/Release)
//   PALI_PACKAGE_LLAMA=<name>                    prebuilt mode, for a per-platform package (scripts/stage.mjs):
//                                                find @node-llama-cpp/<name> at run time instead of copying it
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const nativeDir = dirname(dirname(fileURLToPath(import.meta.url)));
const flag = (name) => /^(1|on|true|yes)$/i.test(process.env[name] ?? "");

function fail(message) {
  console.error(`@pali/native build: ${message}`);
  process.exit(1);
}

function findNodeLlamaCpp() {
  const link = join(nativeDir, "node_modules", "node-llama-cpp");
  if (!existsSync(link)) fail("node-llama-cpp is not installed; run `corepack pnpm install` at the repository root");
  const dir = realpathSync(link);
  const info = JSON.parse(readFileSync(join(dir, "llama", "llama.cpp.info.json"), "utf8"));
  const version = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version;
  return { dir, tag: info.tag, version, bundle: join(dir, "llama", "gitRelease.bundle") };
}

// node-llama-cpp's name for this platform's prebuilt package, or null where none fits the request.
function prebuiltPackageName() {
  const { platform, arch } = process;
  const os = platform === "darwin" ? "mac" : platform === "win32" ? "win" : platform;
  if (flag("PALI_METAL")) return os === "mac" && arch === "arm64" ? "mac-arm64-metal" : null;
  if (flag("PALI_CUDA")) return (os === "linux" || os === "win") && arch === "x64" ? `${os}-x64-cuda` : null;
  if (flag("PALI_VULKAN")) return (os === "linux" || os === "win") && arch === "x64" ? `${os}-x64-vulkan` : null;
  // The Metal build is the one node-llama-cpp ships for Apple silicon.
  if (os === "mac" && arch === "arm64") return "mac-arm64-metal";
  return `${os}-${arch}`;
}

// The folder of prebuilt libraries, if the package is installed and holds what we link against.
function findPrebuilt(nlc) {
  const name = prebuiltPackageName();
  if (name === null) return null;
  const pkgDir = join(dirname(nlc.dir), "@node-llama-cpp", name);
  const binDir = join(pkgDir, "bins", name);
  if (!existsSync(binDir)) return null;
  const files = readdirSync(binDir);
  const linkable =
    process.platform === "win32"
      ? files.some((f) => /^llama.*\.lib$/.test(f))
      : files.some((f) => /^libllama.*\.(so|dylib)$/.test(f));
  return linkable ? binDir : null;
}

// Checks out the bundled llama.cpp once per release into native/vendor/llama.cpp.
function prepareSources(nlc) {
  const vendor = join(nativeDir, "vendor");
  const tree = join(vendor, "llama.cpp");
  const stamp = join(vendor, "llama.cpp.stamp");
  const commit = execFileSync("git", ["bundle", "list-heads", nlc.bundle], { encoding: "utf8" }).split(/\s/)[0];
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === commit && existsSync(join(tree, "include", "llama.h"))) {
    return { tree, commit };
  }
  console.log(`@pali/native: checking out llama.cpp ${nlc.tag} (${commit.slice(0, 10)}) from node-llama-cpp ${nlc.version}`);
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(vendor, { recursive: true });
  execFileSync("git", ["clone", "--quiet", "--no-hardlinks", nlc.bundle, tree], { stdio: "inherit" });
  execFileSync("git", ["-c", "advice.detachedHead=false", "checkout", "--quiet", commit], { cwd: tree, stdio: "inherit" });
  writeFileSync(stamp, commit);
  return { tree, commit };
}

function onPath(command) {
  const probe = process.platform === "win32" ? ["where", [command]] : ["sh", ["-c", `command -v ${command}`]];
  return spawnSync(probe[0], probe[1], { stdio: "ignore" }).status === 0;
}

// Everything a build needs that is not in node_modules, each missing one on its own line.
function checkTools() {
  const missing = [];
  if (!onPath("git"))
    missing.push("git is not on PATH: it checks llama.cpp's headers (and sources) out of node-llama-cpp's bundle");
  if (!onPath("cmake")) missing.push("cmake (3.19 or newer) is not on PATH: cmake-js drives the build with it");
  const compilers = process.platform === "win32" ? ["cl", "clang-cl", "g++"] : [process.env.CXX, "c++", "g++", "clang++"];
  if (!compilers.filter(Boolean).some(onPath) && !(process.platform === "win32" && process.env.VSINSTALLDIR)) {
    missing.push(
      process.platform === "win32"
        ? "no C++ compiler: install Visual Studio Build Tools (Desktop development with C++)"
        : "no C++ compiler on PATH (c++, g++ or clang++; or set CXX)",
    );
  }
  if (missing.length > 0) {
    for (const line of missing) console.error(`@pali/native build: ${line}`);
    console.error(
      "@pali/native build: to run pali without building, install it from npm: the @pali/native-<platform> packages carry the addon prebuilt",
    );
    process.exit(1);
  }
}

function main() {
  const started = Date.now();
  checkTools();
  const nlc = findNodeLlamaCpp();
  const { tree, commit } = prepareSources(nlc);
  const requested = process.env.PALI_LLAMA_MODE;
  const prebuilt = requested === "source" ? null : findPrebuilt(nlc);
  if (requested === "prebuilt" && prebuilt === null) {
    fail(
      `no prebuilt llama.cpp from node-llama-cpp fits ${process.platform}-${process.arch} with these options; unset PALI_LLAMA_MODE to build from source`,
    );
  }
  const mode = prebuilt ? "prebuilt" : "source";
  const version = JSON.parse(readFileSync(join(nativeDir, "package.json"), "utf8")).version;
  const defines = {
    PALI_LLAMA_MODE: mode,
    PALI_LLAMA_DIR: tree,
    PALI_PREBUILT_DIR: prebuilt ?? "",
    PALI_LLAMA_TAG: nlc.tag,
    PALI_LLAMA_COMMIT: commit.slice(0, 10),
    PALI_VERSION: version,
    PALI_CUDA: flag("PALI_CUDA") ? "ON" : "OFF",
    PALI_METAL: flag("PALI_METAL") ? "ON" : "OFF",
    PALI_VULKAN: flag("PALI_VULKAN") ? "ON" : "OFF",
    CMAKE_BUILD_TYPE: "Release",
  };
  // Always passed, so that a build folder never keeps another run's value in its CMake cache.
  defines.PALI_PACKAGE_LLAMA = process.env.PALI_PACKAGE_LLAMA ?? "";
  if (defines.PALI_PACKAGE_LLAMA && (!prebuilt || prebuiltPackageName() !== defines.PALI_PACKAGE_LLAMA)) {
    fail(
      `PALI_PACKAGE_LLAMA=${defines.PALI_PACKAGE_LLAMA} needs prebuilt mode over that same node-llama-cpp package (this run: ${prebuilt ? prebuiltPackageName() : "source mode"})`,
    );
  }
  if (process.env.GGML_NATIVE) defines.GGML_NATIVE = process.env.GGML_NATIVE;
  if (process.env.CMAKE_CUDA_ARCHITECTURES) defines.CMAKE_CUDA_ARCHITECTURES = process.env.CMAKE_CUDA_ARCHITECTURES;
  for (const pair of (process.env.PALI_CMAKE_DEFINES ?? "").split(/\s+/).filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (eq <= 0) fail(`PALI_CMAKE_DEFINES entries look like NAME=VALUE, not ${pair}`);
    defines[pair.slice(0, eq)] = pair.slice(eq + 1);
  }

  const jobs = process.env.PALI_BUILD_JOBS ?? String(availableParallelism());
  const cmakeJs = join(nativeDir, "node_modules", "cmake-js", "bin", "cmake-js");
  const args = [cmakeJs, "build", "--out", process.env.PALI_BUILD_DIR ?? "build", `--parallel=${jobs}`];
  for (const [key, value] of Object.entries(defines)) args.push(`--CD${key}=${value}`);
  console.log(`@pali/native: ${mode} llama.cpp ${nlc.tag}${prebuilt ? ` from ${prebuilt}` : ""}, ${jobs} jobs`);
  const result = spawnSync(process.execPath, args, { cwd: nativeDir, stdio: "inherit" });
  if (result.status !== 0) fail(`cmake-js exited with ${result.status ?? result.signal}`);
  console.log(`@pali/native: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main();
