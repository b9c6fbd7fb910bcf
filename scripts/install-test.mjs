#!/usr/bin/env node
// The install test (#11): pali as a user gets it from npm, not as this repository runs it.
//
//   node scripts/install-test.mjs [--keep] [--no-stage]
//
// After `corepack pnpm build`: stages this machine's per-platform addon package (native/scripts/stage.mjs),
// packs every publishable package (`pnpm pack`, which turns workspace:* into the version), and installs the
// tarballs with plain npm into an empty folder outside the repository, with a PATH of node, npm and basic
// tools only (no compiler, cmake or make). There: `npx pali caption` / `npx pali detect` on the demo model
// and an ESM script on @pali/sdk must print the README's quick-start answers, and the native variant package
// must be the addon that loads. A second folder gets only @pali/tasks and @pali/tokenizer and must hold no
// native package; their README examples run there, through `import` and through `require`.
//
// npm runs with --ignore-scripts: nothing pali installs needs an install script (the addon and ggml are
// prebuilt per-platform packages; sharp and msgpackr-extract take their prebuilt @img/… and @msgpackr-extract/…
// packages, and their scripts only compile from source when those are missing), and without it the result
// would depend on what a script downloads or builds. node-llama-cpp itself (whose postinstall downloads or
// builds) is not installed at all: pali depends only on its platform package, which the check below asserts.
import { execFileSync, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { publishablePackages, repoDir } from "./packages.mjs";

const args = process.argv.slice(2);
const keep = args.includes("--keep");
const started = Date.now();
const failures = [];
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
const log = (line) => console.log(`install-test: ${line}`);

function check(ok, what) {
  if (ok) log(`ok   ${what}`);
  else {
    failures.push(what);
    console.error(`install-test: FAIL ${what}`);
  }
}

function run(cmd, argv, options = {}) {
  const r = spawnSync(cmd, argv, { encoding: "utf8", maxBuffer: 64 << 20, ...options });
  if (r.error) throw r.error;
  if (r.status !== 0 && !options.allowFail) {
    throw new Error(`${cmd} ${argv.join(" ")} exited with ${r.status}:\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

/** Bytes of the files under a folder (symlinks not followed), as a package takes on disk. */
function sizeOf(path) {
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of readdirSync(path)) total += sizeOf(join(path, e));
  return total;
}
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;

// --- the README's quick start: the commands a user types and the answers they get ---
const readme = readFileSync(join(repoDir, "README.md"), "utf8");
const quickStart = readme.slice(readme.indexOf("## Quick start"), readme.indexOf("\n## ", readme.indexOf("## Quick start") + 5));
const blocks = [...quickStart.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], text: m[2] }));
const userBlock = blocks.findIndex((b) => b.text.includes("npx pali caption"));
if (userBlock < 0) throw new Error("README.md's quick start has no `npx pali caption` block");
const commands = blocks[userBlock].text;
const expected = blocks[userBlock + 1]?.text.trim().split("\n") ?? [];
const demo = { model: "pali-demo-q8_0.gguf", image: "002.png", labels: "circle ; square ; triangle" };
const captionCmd = `npx pali caption -m ${demo.model} -i ${demo.image}`;
const detectCmd = `npx pali detect -m ${demo.model} -i ${demo.image} -l "${demo.labels}"`;
for (const c of ["npm install @pali/sdk @pali/cli", captionCmd, detectCmd])
  if (!commands.includes(c)) throw new Error(`README.md's quick start no longer says \`${c}\`; update this test with it`);
log(`README answers: ${JSON.stringify(expected)}`);

// --- stage this platform's addon package and pack everything ---
const platform = `${process.platform}-${process.arch}`;
if (!args.includes("--no-stage")) {
  const t = Date.now();
  run(process.execPath, [join(repoDir, "native/scripts/stage.mjs"), platform], { stdio: "inherit" });
  log(`staged @pali/native-${platform} in ${seconds(Date.now() - t)}`);
}
const root = mkdtempSync(join(tmpdir(), "pali-install-"));
const tarballs = join(root, "tarballs");
mkdirSync(tarballs);
const packed = new Map();
const packStart = Date.now();
for (const p of publishablePackages()) {
  // only this platform's CPU variant is staged here; GPU variants are staged on their runners
  if (p.kind === "variant" && p.variant !== platform) continue;
  if (p.kind !== "variant" && !existsSync(join(p.dir, p.kind === "native" ? "package.json" : "dist"))) {
    throw new Error(`${relative(repoDir, p.dir)} is not built; run corepack pnpm build first`);
  }
  const before = new Set(readdirSync(tarballs));
  if (p.kind === "variant") run("npm", ["pack", "--silent", "--pack-destination", tarballs], { cwd: p.dir });
  else run("corepack", ["pnpm", "pack", "--pack-destination", tarballs], { cwd: p.dir });
  const file = readdirSync(tarballs).find((f) => !before.has(f));
  packed.set(p.pkg.name, join(tarballs, file));
}
check(packed.has(`@pali/native-${platform}`), `@pali/native-${platform} is staged and packed`);
log(`packed ${packed.size} packages in ${seconds(Date.now() - packStart)} into ${tarballs}`);
for (const [name, file] of packed) {
  const manifest = JSON.parse(execFileSync("tar", ["-xzOf", file, "package/package.json"], { encoding: "utf8" }));
  const deps = Object.entries({ ...manifest.dependencies, ...manifest.optionalDependencies });
  check(!deps.some(([, range]) => String(range).startsWith("workspace:")), `${name}'s packed dependencies are version ranges`);
}

// --- a PATH with node, npm and basic tools, and nothing that compiles ---
const bin = join(root, "bin");
mkdirSync(bin);
const which = (tool) => run("sh", ["-c", `command -v ${tool}`], { allowFail: true }).stdout.trim();
for (const tool of [
  "sh",
  "bash",
  "env",
  "ls",
  "cat",
  "cp",
  "mv",
  "rm",
  "mkdir",
  "uname",
  "sed",
  "grep",
  "head",
  "tail",
  "tar",
  "gzip",
]) {
  const at = which(tool);
  if (at) symlinkSync(at, join(bin, tool));
}
symlinkSync(process.execPath, join(bin, "node"));
const npmCli = join(run("npm", ["root", "-g"]).stdout.trim(), "npm", "bin");
symlinkSync(join(npmCli, "npm-cli.js"), join(bin, "npm"));
symlinkSync(join(npmCli, "npx-cli.js"), join(bin, "npx"));
const passThrough =
  /^(npm_config_(registry|cafile|ca|strict_ssl|proxy|https_proxy|noproxy|userconfig|globalconfig|cache)|https?_proxy|no_proxy|ssl_cert_file|node_extra_ca_certs)$/i;
const env = { HOME: process.env.HOME ?? root, PATH: bin, TMPDIR: tmpdir(), LANG: "C.UTF-8" };
for (const [k, v] of Object.entries(process.env)) if (passThrough.test(k) && v !== undefined) env[k] = v;
const inApp = (dir, command) => run("sh", ["-c", command], { cwd: dir, env, allowFail: true });
const toolCheck = inApp(root, "for t in cc c++ gcc g++ clang clang++ cmake make ninja; do command -v $t; done; true");
check(toolCheck.stdout.trim() === "", `no compiler, cmake or make on the install PATH (${bin})`);
log(`registry: ${inApp(root, "npm config get registry").stdout.trim()}`);

function npmInstall(dir, files) {
  mkdirSync(dir);
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ name: "app", private: true, type: "module" }, null, 2)}\n`);
  const t = Date.now();
  const quoted = files.map((f) => `'${f}'`).join(" ");
  const r = inApp(dir, `npm install --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error ${quoted}`);
  const ms = Date.now() - t;
  if (r.status !== 0) throw new Error(`npm install in ${dir} failed:\n${r.stdout}\n${r.stderr}`);
  return ms;
}
const installed = (dir) => {
  const nm = join(dir, "node_modules");
  const names = [];
  for (const e of readdirSync(nm)) {
    if (e.startsWith(".")) continue;
    if (e.startsWith("@")) for (const s of readdirSync(join(nm, e))) names.push(`${e}/${s}`);
    else names.push(e);
  }
  return names.sort();
};

// --- everything, as `npm install @pali/sdk @pali/cli` would give it ---
const app = join(root, "app");
const installMs = npmInstall(app, [...packed.values()]);
log(`installed every package in ${seconds(installMs)}`);
const all = installed(app);
check(!all.includes("node-llama-cpp"), "node-llama-cpp itself (its postinstall downloads) is not installed");
check(all.includes(`@pali/native-${platform}`), `@pali/native-${platform} is installed`);
for (const f of [demo.model, "mmproj-pali-demo-f16.gguf", "mask-decoder-f32.gguf"])
  cpSync(join(repoDir, "models/demo", f), join(app, f));
cpSync(join(repoDir, "models/demo/examples", demo.image), join(app, demo.image));

const lines = (r) => r.stdout.trim().split("\n");
let t = Date.now();
const caption = inApp(app, captionCmd);
const detect = inApp(app, detectCmd);
log(`npx pali caption + detect in ${seconds(Date.now() - t)}`);
check(caption.status === 0 && detect.status === 0, `npx pali exits 0 ${caption.stderr}${detect.stderr}`);
const cliLines = [...lines(caption), ...lines(detect)];
check(
  JSON.stringify(cliLines) === JSON.stringify(expected),
  `npx pali caption/detect give the README's answers: ${JSON.stringify(cliLines)}`,
);

const info = inApp(app, "npx pali info --json");
const variant = info.status === 0 ? JSON.parse(info.stdout).variant : undefined;
log(`pali info: the addon is ${variant?.variant} (${variant?.path})`);
// @pali/native is the meta-package of the variants: headers only, no machine's build output, so the installed
// app must run the per-platform package.
const nativeFiles = execFileSync("tar", ["-tzf", packed.get("@pali/native")], { encoding: "utf8" })
  .trim()
  .split("\n");
check(
  !nativeFiles.some((f) => f.includes("build/") || f.endsWith(".node") || f.endsWith(".so")),
  `@pali/native's tarball carries no build output: ${nativeFiles.join(", ")}`,
);
check(variant?.variant === `@pali/native-${platform}`, `the app runs @pali/native-${platform}`);

writeFileSync(
  join(app, "sdk.mjs"),
  `import { PaliGemma } from "@pali/sdk";
const pg = await PaliGemma.load({ model: ${JSON.stringify(demo.model)} });
console.log((await pg.caption(${JSON.stringify(demo.image)})).text);
const { detections } = await pg.detect(${JSON.stringify(demo.image)}, ${JSON.stringify(demo.labels.split(" ; "))});
for (const d of detections) console.log([d.label, [d.box.x1, d.box.y1, d.box.x2, d.box.y2].join(","), d.score?.toFixed(3)].join("\\t"));
await pg.dispose();
`,
);
t = Date.now();
const sdk = inApp(app, "node sdk.mjs");
log(`the SDK script in ${seconds(Date.now() - t)}`);
check(
  JSON.stringify(lines(sdk)) === JSON.stringify(expected),
  `an ESM script on @pali/sdk gives the README's answers: ${JSON.stringify(lines(sdk))} ${sdk.stderr}`,
);

const libraries = [...packed.keys()].filter((n) => !n.startsWith("@pali/native"));
const required = inApp(app, `node -e 'for (const p of ${JSON.stringify(libraries)}) require(p)'`);
check(
  required.status === 0,
  `require() loads every package (Node ${process.versions.node}: require of ES modules) ${required.stderr}`,
);

// --- only the plain-TypeScript packages: no native code may come with them ---
const lite = join(root, "lite");
const liteNames = ["@pali/tasks", "@pali/tokenizer"];
// npm resolves their @pali dependencies from the registry unless given the tarballs: give the ones they need
const liteFiles = ["@pali/tasks", "@pali/tokenizer", "@pali/gguf", "@pali/base"].map((n) => packed.get(n));
const liteMs = npmInstall(lite, liteFiles);
const liteAll = installed(lite);
log(`installed ${liteNames.join(" + ")} in ${seconds(liteMs)}: ${liteAll.join(", ")}`);
const nativeThere = liteAll.filter((n) =>
  /^@pali\/(core|native|sdk|cli)|^@node-llama-cpp\/|^node-llama-cpp$|^sharp$|^@img\//.test(n),
);
check(
  nativeThere.length === 0,
  `@pali/tasks + @pali/tokenizer pull in no native package${nativeThere.length ? `: ${nativeThere.join(", ")}` : ""}`,
);
cpSync(join(repoDir, "models/demo", demo.model), join(lite, demo.model));
writeFileSync(
  join(lite, "readme.mjs"),
  `import { readGGUF } from "@pali/gguf";
import { detectPrompt, parseDetections } from "@pali/tasks";
import { Tokenizer } from "@pali/tokenizer";
const tokenizer = Tokenizer.fromGGUF(await readGGUF(${JSON.stringify(demo.model)}));
console.log(tokenizer.decode(tokenizer.encode("detect cat ; dog")));
console.log(detectPrompt(["cat", "dog"]));
const { detections } = parseDetections("<loc0051><loc0309><loc0708><loc0646> cat", { imageWidth: 640, imageHeight: 480 });
console.log(detections[0].label, JSON.stringify(detections[0].box));
`,
);
const want = ["detect cat ; dog", "detect cat ; dog", 'cat {"x1":193,"y1":24,"x2":404,"y2":332}'];
const liteRun = inApp(lite, "node readme.mjs");
check(
  JSON.stringify(lines(liteRun)) === JSON.stringify(want),
  `the tasks/tokenizer README examples run without native code: ${JSON.stringify(lines(liteRun))} ${liteRun.stderr}`,
);
const cjs = inApp(
  lite,
  `node -e 'const t = require("@pali/tasks"); const k = require("@pali/tokenizer"); console.log(typeof t.parseDetections, typeof k.Tokenizer)'`,
);
check(
  cjs.stdout.trim() === "function function",
  `require() loads @pali/tasks and @pali/tokenizer (Node ${process.versions.node}) ${cjs.stderr}`,
);

// --- the record: what each package takes on disk, and how long it took ---
const nm = join(app, "node_modules");
const rows = all.map((n) => ({ name: n, bytes: sizeOf(join(nm, n)) }));
const ours = rows.filter((r) => r.name.startsWith("@pali/"));
const total = rows.reduce((s, r) => s + r.bytes, 0);
console.log("\ninstall size per package (node_modules of the full install):");
for (const r of ours) console.log(`  ${r.name.padEnd(28)} ${mib(r.bytes).padStart(10)}`);
for (const r of rows
  .filter((r) => !r.name.startsWith("@pali/"))
  .sort((a, b) => b.bytes - a.bytes)
  .slice(0, 6))
  console.log(`  ${r.name.padEnd(28)} ${mib(r.bytes).padStart(10)}  (dependency)`);
console.log(`  ${"all".padEnd(28)} ${mib(total).padStart(10)}  (${rows.length} packages)`);
console.log(
  `  ${"tasks + tokenizer only".padEnd(28)} ${mib(liteAll.reduce((s, n) => s + sizeOf(join(lite, "node_modules", n)), 0)).padStart(10)}  (${liteAll.length} packages)`,
);
console.log(
  `install time: ${seconds(installMs)} (all), ${seconds(liteMs)} (tasks + tokenizer); the whole test ${seconds(Date.now() - started)}`,
);

if (!keep) rmSync(root, { recursive: true, force: true });
else log(`kept ${root}`);
if (failures.length > 0) {
  console.error(`install-test: ${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
log("passed");
