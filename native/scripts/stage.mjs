#!/usr/bin/env node
// Builds pali's addon for one per-platform package and stages it into native/npm/<variant>/bin, ready for
// `npm pack native/npm/<variant>`. The build links node-llama-cpp's prebuilt libraries for that variant and
// ships none of them: the package depends on @node-llama-cpp/<name> and the addon finds it through rpath
// entries relative to itself (see CMakeLists.txt, PALI_PACKAGE_LLAMA).
//
//   node native/scripts/stage.mjs linux-x64            build in native/build-linux-x64, stage
//   node native/scripts/stage.mjs linux-x64 --no-build stage what native/build-linux-x64 holds
//   node native/scripts/stage.mjs linux-x64 --pack     stage, then `npm pack` into native/npm/dist
//
// The variant must match this machine's os and cpu (the release workflow runs it on each runner). In the
// repository, native/npm/<variant>/node_modules/@node-llama-cpp/<name> is linked to the installed copy, so
// that the staged addon loads from here too (`gpu: "vulkan"` finds it); npm pack leaves node_modules out.
import { execFileSync, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import { findVariant, nativeDir, workspaceVersion } from "./variants.mjs";

function fail(message) {
  console.error(`@pali/native stage: ${message}`);
  process.exit(1);
}

const args = process.argv.slice(2);
const name = args.find((a) => !a.startsWith("--"));
if (!name) fail("usage: node native/scripts/stage.mjs <variant> [--no-build] [--pack]");
let v;
try {
  v = findVariant(name);
} catch (e) {
  fail(e.message);
}
if (v.os !== process.platform || v.cpu !== process.arch) {
  fail(`${v.variant} is built on ${v.os}-${v.cpu}; this machine is ${process.platform}-${process.arch}`);
}

const buildDir = join(nativeDir, `build-${v.variant}`);
const pkgDir = join(nativeDir, "npm", v.variant);
const addonName = "pali.node";

if (!args.includes("--no-build")) {
  const env = {
    ...process.env,
    PALI_LLAMA_MODE: "prebuilt",
    PALI_BUILD_DIR: relative(nativeDir, buildDir),
    PALI_PACKAGE_LLAMA: v.llama,
    PALI_CUDA: v.gpu === "cuda" ? "1" : "0",
    PALI_VULKAN: v.gpu === "vulkan" ? "1" : "0",
    PALI_METAL: v.gpu === "metal" ? "1" : "0",
  };
  const result = spawnSync(process.execPath, [join(nativeDir, "scripts", "build.mjs")], { env, stdio: "inherit" });
  if (result.status !== 0) fail(`the build of ${v.variant} failed`);
}

const built = join(buildDir, "Release", addonName);
if (!existsSync(built)) fail(`${built} does not exist; run without --no-build`);
const binDir = join(pkgDir, "bin");
rmSync(binDir, { recursive: true, force: true });
mkdirSync(binDir, { recursive: true });
copyFileSync(built, join(binDir, addonName));
writeFileSync(
  join(binDir, "build.json"),
  `${JSON.stringify({ variant: v.variant, version: workspaceVersion(), llama: `@node-llama-cpp/${v.llama}`, gpu: v.gpu }, null, 2)}\n`,
);
if (process.platform === "linux") {
  try {
    const runpath = execFileSync("readelf", ["-d", join(binDir, addonName)], { encoding: "utf8" })
      .split("\n")
      .find((l) => /RUNPATH|RPATH/.test(l));
    if (runpath) console.log(`@pali/native stage: ${runpath.trim().replace(/\s+/g, " ")}`);
  } catch {
    // readelf is a nicety
  }
}

// The repository's own copy of the library package, linked where the nested-layout rpath entry looks.
const llamaPackage = join(realpathSync(join(nativeDir, "node_modules", "node-llama-cpp")), "..", "@node-llama-cpp", v.llama);
const link = join(pkgDir, "node_modules", "@node-llama-cpp", v.llama);
if (existsSync(llamaPackage)) {
  rmSync(link, { recursive: true, force: true });
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(realpathSync(llamaPackage), link, "junction");
}

const size = readdirSync(binDir).reduce((n, f) => n + statSync(join(binDir, f)).size, 0);
console.log(`@pali/native stage: ${v.variant} staged in ${relative(process.cwd(), binDir)} (${(size / 2 ** 20).toFixed(1)} MiB)`);

if (args.includes("--pack")) {
  const dist = join(nativeDir, "npm", "dist");
  mkdirSync(dist, { recursive: true });
  const out = execFileSync("npm", ["pack", "--pack-destination", dist, pkgDir], {
    encoding: "utf8",
    shell: process.platform === "win32",
  });
  console.log(`@pali/native stage: packed ${join(dist, out.trim().split("\n").pop())}`);
}
