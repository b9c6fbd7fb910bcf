/**
 * The per-platform prebuilt packages of @pali/native (native/npm/<variant>): the same table as
 * native/scripts/variants.mjs, which writes their package.json files; a test keeps the three in step.
 */

export type GpuBackend = "cuda" | "vulkan" | "metal";

export interface NativeVariant {
  /** @pali/native-<variant> */
  variant: string;
  os: NodeJS.Platform;
  cpu: string;
  /** the @node-llama-cpp/<llama> package whose ggml/libllama it links */
  llama: string;
  /** the GPU backend it adds; Metal is the only build node-llama-cpp ships for Apple silicon */
  gpu: GpuBackend | null;
}

export const nativeVariants: readonly NativeVariant[] = [
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

/** A variant that needs a GPU driver to load: test-loaded in a child process before it is trusted. */
export function isGpuOnly(v: NativeVariant): boolean {
  return v.gpu === "cuda" || v.gpu === "vulkan";
}

export interface Platform {
  os: NodeJS.Platform;
  arch: string;
  /** "glibc" or "musl" on Linux, null elsewhere */
  libc: "glibc" | "musl" | null;
}

export function currentPlatform(): Platform {
  let libc: Platform["libc"] = null;
  if (process.platform === "linux") {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    libc = header?.glibcVersionRuntime ? "glibc" : "musl";
  }
  return { os: process.platform, arch: process.arch, libc };
}

/** The variants that install on a platform (all are glibc-only on Linux). */
export function variantsFor(p: Platform): NativeVariant[] {
  return nativeVariants.filter((v) => v.os === p.os && v.cpu === p.arch && (p.os !== "linux" || p.libc === "glibc"));
}

export function platformLabel(p: Platform): string {
  return `${p.os}-${p.arch}${p.libc ? ` (${p.libc})` : ""}`;
}
