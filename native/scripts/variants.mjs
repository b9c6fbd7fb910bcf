// The per-platform prebuilt packages of @pali/native (sharp's @img/sharp-<os>-<arch> pattern): one table,
// read by stage.mjs, set-version.mjs and the release workflow. packages/core/src/native-variants.ts holds
// the same table for the loader; a test checks that the two and native/npm/*/package.json agree.
//
//   node native/scripts/variants.mjs          list the variants as JSON
//   node native/scripts/variants.mjs --write  (re)write native/npm/<variant>/{package.json,README.md,LICENSE}
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const nativeDir = dirname(dirname(fileURLToPath(import.meta.url)));
export const repoDir = dirname(nativeDir);
/** node-llama-cpp's release whose libraries every variant links against */
export const nodeLlamaCppVersion = "3.21.1";

/**
 * name: @pali/native-<variant>; llama: the @node-llama-cpp/<llama> package that carries ggml/libllama;
 * gpu: the backend the variant adds (Metal is the only build node-llama-cpp ships for Apple silicon).
 */
export const variants = [
  { variant: "linux-x64", os: "linux", cpu: "x64", llama: "linux-x64", gpu: null },
  { variant: "linux-arm64", os: "linux", cpu: "arm64", llama: "linux-arm64", gpu: null },
  { variant: "darwin-arm64", os: "darwin", cpu: "arm64", llama: "mac-arm64-metal", gpu: "metal" },
  { variant: "darwin-x64", os: "darwin", cpu: "x64", llama: "mac-x64", gpu: null },
  { variant: "win32-x64", os: "win32", cpu: "x64", llama: "win-x64", gpu: null },
  { variant: "linux-x64-cuda", os: "linux", cpu: "x64", llama: "linux-x64-cuda", gpu: "cuda" },
  { variant: "linux-x64-vulkan", os: "linux", cpu: "x64", llama: "linux-x64-vulkan", gpu: "vulkan" },
  { variant: "win32-x64-cuda", os: "win32", cpu: "x64", llama: "win-x64-cuda", gpu: "cuda" },
  { variant: "win32-x64-vulkan", os: "win32", cpu: "x64", llama: "win-x64-vulkan", gpu: "vulkan" },
];

export function findVariant(name) {
  const v = variants.find((x) => x.variant === name);
  if (!v) throw new Error(`unknown variant ${name}; one of: ${variants.map((x) => x.variant).join(", ")}`);
  return v;
}

export function workspaceVersion() {
  return JSON.parse(readFileSync(join(nativeDir, "package.json"), "utf8")).version;
}

const osNames = { linux: "Linux", darwin: "macOS", win32: "Windows" };
const gpuNames = { cuda: "CUDA", vulkan: "Vulkan", metal: "Metal" };

function describe(v) {
  return `${osNames[v.os]} ${v.cpu}${v.gpu ? ` with ${gpuNames[v.gpu]}` : ""}`;
}

export function packageJson(v, version) {
  return {
    name: `@pali/native-${v.variant}`,
    version,
    description: `pali's prebuilt native addon for ${describe(v)}`,
    license: "MIT",
    os: [v.os],
    cpu: [v.cpu],
    ...(v.os === "linux" ? { libc: ["glibc"] } : {}),
    engines: { node: ">=20" },
    files: ["bin/", "README.md", "LICENSE"],
    exports: { "./package.json": "./package.json" },
    dependencies: { [`@node-llama-cpp/${v.llama}`]: nodeLlamaCppVersion },
    pali: { variant: v.variant, gpu: v.gpu, llama: `@node-llama-cpp/${v.llama}`, addon: "bin/pali.node" },
  };
}

function readme(v) {
  const npmOs = v.os;
  return `# @pali/native-${v.variant}

pali's native addon (its C++ core: SigLIP, projector and mask decoder on ggml; Gemma on libllama) prebuilt for
${describe(v)}. You do not install this package yourself: \`@pali/native\` lists it as an optional dependency
with \`os\`/\`cpu\`${v.os === "linux" ? "/`libc`" : ""} fields, so npm, pnpm and yarn install it on matching machines only, and
\`@pali/core\` loads it.

ggml and libllama are not in this package: they come from
[\`@node-llama-cpp/${v.llama}\`](https://www.npmjs.com/package/@node-llama-cpp/${v.llama}) ${nodeLlamaCppVersion}, a dependency, whose
\`bins/${v.llama}\` folder the addon finds at run time (rpath entries relative to the addon for npm's flat and
nested layouts and pnpm's; the loader also loads the ggml CPU variants${v.gpu ? ` and the ${gpuNames[v.gpu]} backend` : ""} from there).
${
  v.gpu && v.gpu !== "metal"
    ? `
This is a GPU variant: pali test-loads it in a child process before trusting it (a missing or broken
${gpuNames[v.gpu]} driver never takes your process down) and falls back to the CPU variant with one log line.
Choose it with \`gpu: "${v.gpu}"\` in the SDK or \`--gpu ${v.gpu}\` on the CLI; \`"auto"\` (the default) tries it first.
${v.gpu === "cuda" ? "It needs an NVIDIA driver and the CUDA 13 runtime (libcudart, libcublas) on the library path.\n" : "It needs a Vulkan loader and driver (on Debian/Ubuntu: `libvulkan1` and `mesa-vulkan-drivers` or your GPU vendor's driver).\n"}`
    : ""
}
To install it on another machine than the one that runs \`npm install\` (a Docker image, a lambda):

\`\`\`sh
npm install --os=${npmOs} --cpu=${v.cpu}${v.os === "linux" ? " --libc=glibc" : ""} @pali/sdk
\`\`\`

Licence: MIT (see LICENSE). llama.cpp/ggml (MIT) come with \`@node-llama-cpp/${v.llama}\`.
`;
}

function writePackages() {
  const version = workspaceVersion();
  const license = readFileSync(join(repoDir, "LICENSE"), "utf8");
  for (const v of variants) {
    const dir = join(nativeDir, "npm", v.variant);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "package.json"), `${JSON.stringify(packageJson(v, version), null, 2)}\n`);
    writeFileSync(join(dir, "README.md"), readme(v));
    writeFileSync(join(dir, "LICENSE"), license);
  }
  console.log(`wrote ${variants.length} packages under native/npm at ${version}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes("--write")) {
    if (!existsSync(join(repoDir, "LICENSE"))) throw new Error("LICENSE is missing at the repository root");
    writePackages();
  } else {
    console.log(JSON.stringify(variants, null, 2));
  }
}
