/**
 * The native addon: where it is, how it is loaded, and its whole contract, typed in this one file.
 * Everything above this file talks to native code through these types only.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { expectOneOf } from "@pali/base";
import { NativeBinaryError } from "./errors.js";
import {
  envWithLibDir,
  findNativeCandidates,
  type GpuPreference,
  type NativeCandidate,
  noBinaryMessage,
  selectNative,
} from "./native-loader.js";
import { currentPlatform, type GpuBackend, platformLabel } from "./native-variants.js";

export type { GpuPreference, NativeCandidate } from "./native-loader.js";
export type { GpuBackend, NativeVariant } from "./native-variants.js";

export interface NativeDeviceInfo {
  name: string;
  description: string;
  backend: string;
  type: "cpu" | "gpu" | "igpu" | "accel";
  memoryFree: number;
  memoryTotal: number;
}

export interface NativeSystemInfo {
  version: string;
  llamaCpp: string;
  ggml: string;
  buildMode: "prebuilt" | "source";
  /** "NAME=VALUE" pairs separated by ";" */
  cpuFeatures: string;
  defaultThreads: number;
  devices: NativeDeviceInfo[];
}

/** One of pali's own ggml graphs (the image encode, the mask decoder) as the scheduler ran it last. */
export interface NativeGraphStats {
  graph: string;
  nodes: number;
  splits: number;
  /** nodes per backend the scheduler gave them to, e.g. { Vulkan0: 950, CPU: 2 } */
  nodesByBackend: Record<string, number>;
  /** bytes of weights the graph read, per buffer they live in, e.g. { Vulkan0: 1.2e6 } */
  weightBytesByBuffer: Record<string, number>;
}

export interface NativeTextModelInfo {
  description: string;
  params: number;
  sizeBytes: number;
  embeddingLength: number;
  layers: number;
  vocabSize: number;
  contextLength: number;
}

export interface NativeTextModel {
  info(): NativeTextModelInfo;
  meta(key: string): string | undefined;
  tokenize(text: string, parseSpecial: boolean): Int32Array;
  /** loads a libllama LoRA GGUF for this model (before contexts are made); its index for Context.setLoras */
  addLora(path: string): Promise<number>;
  dispose(): void;
}

export interface NativeTextModelConstructor {
  load(path: string, options: { gpuLayers: number; useMmap: boolean }): Promise<NativeTextModel>;
}

export interface NativeVisionModelInfo {
  imageSize: number;
  patchSize: number;
  imageTokenCount: number;
  embeddingLength: number;
  feedForwardLength: number;
  layers: number;
  heads: number;
  projectionDim: number;
  layerNormEps: number;
  sizeBytes: number;
  /** the ggml device holding the weights, e.g. "CPU" */
  device: string;
}

export interface NativeVisionModel {
  info(): NativeVisionModelInfo;
  /** abort: one Int32; writing non-zero stops the encode between graph nodes (ERR_ABORTED) */
  encode(
    pixels: Float32Array,
    nImages: number,
    threads: number,
    out: Float32Array,
    abort?: Int32Array,
    loras?: Int32Array,
    scales?: Float32Array,
  ): Promise<void>;
  /** loads a vision LoRA GGUF for this model (before encodes); its index for encode's loras */
  addLora(path: string): Promise<number>;
  dispose(): void;
}

export interface NativeVisionModelConstructor {
  load(path: string, options: { useGpu: boolean }): Promise<NativeVisionModel>;
}

export interface NativeGenerateParams {
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  repeatLastN: number;
  seed: number;
}

export interface NativeTimings {
  prefillMs: number;
  prefillTokens: number;
  decodeMs: number;
  decodedTokens: number;
}

/**
 * One request at a time over a TextModel (KV cache, buffers). A context leases the model's weights: the
 * model's dispose() frees them only after its last context (core's Context wraps this).
 */
export interface NativeContext {
  prefill(imageEmbeddings: Float32Array, imageTokens: number, textIds: Int32Array): Promise<void>;
  logits(out: Float32Array): void;
  generate(
    params: NativeGenerateParams,
    onToken: ((token: number, logprob: number) => void) | null,
  ): Promise<{ tokens: Int32Array; logprobs: Float32Array; finishReason: number }>;
  score(suffix: Int32Array, out: Float32Array): Promise<void>;
  beamSearch(
    nBeams: number,
    lengthPenalty: number,
    maxTokens: number,
  ): Promise<{ tokens: Int32Array; logprobs: Float32Array; finishReason: number }>;
  seqPrefill(
    seq: number,
    imageEmbeddings: Float32Array,
    imageTokens: number,
    textIds: Int32Array,
    params: NativeGenerateParams | null,
    logits: Float32Array | null,
  ): Promise<{ token: number; logprob: number } | undefined>;
  seqStep(seqs: Int32Array, tokens: Int32Array, outTokens: Int32Array, outLogprobs: Float32Array): Promise<void>;
  seqScore(seq: number, suffix: Int32Array, out: Float32Array): Promise<void>;
  seqRelease(seq: number): void;
  /** the adapters (TextModel.addLora indices) the next decodes apply, with their scales; empty: none */
  setLoras(loras: Int32Array, scales: Float32Array): void;
  abort(abort: boolean): void;
  timings(): NativeTimings;
  dispose(): void;
}

export interface NativeContextConstructor {
  create(
    model: NativeTextModel,
    options: {
      nCtx: number;
      threads: number;
      flashAttn: boolean;
      kvF32: boolean;
      beamsMax: number;
      nUbatch: number;
      /** default 1 */
      nParallel?: number;
    },
  ): Promise<NativeContext>;
}

/** pali.h `enum pali_log_level` */
export type NativeLogLevel = 1 | 2 | 3 | 4;

export interface NativeAddon {
  backendInit(dir: string): void;
  systemInfo(): NativeSystemInfo;
  /** pali_graph_stats_json: where the last run of each of pali's own graphs ran (JSON of NativeGraphStats[]) */
  graphStatsJson(): string;
  ggufMetadataJson(path: string): Promise<string>;
  quantize(input: string, output: string, type: string, threads: number): Promise<void>;
  rowSize(type: string, nPerRow: number): number;
  /**
   * GFLOP/s of an n×k weight (a ggml type: "bf16", "q4_K", …) by k×m activation product on the CPU backend, by
   * ggml's mul_mat ("ggml") or pali's vision-tower product ("pali") (benchmarks)
   */
  benchMatmul(
    m: number,
    n: number,
    k: number,
    threads: number,
    type: string,
    path: "ggml" | "pali",
    reps: number,
  ): Promise<number>;
  /**
   * out (m rows of n) = x (m rows of k) · wᵀ, w being n rows of k values of a ggml type, by either path; pali's
   * path may add a bias (n floats), apply SigLIP's tanh GELU, and pad heads of `head` columns with zeros to a
   * multiple of 16 (out rows are then n / head · roundup(head, 16) wide) (tests)
   */
  matmul(
    type: string,
    path: "ggml" | "pali",
    m: number,
    n: number,
    k: number,
    w: Uint8Array,
    x: Float32Array,
    out: Float32Array,
    threads: number,
    bias?: Float32Array | null,
    gelu?: boolean,
    head?: number,
  ): Promise<void>;
  /** pali's kernel for weights of this ggml type and row length k: "avx512-bf16", "avx512-f32", "avx2-f32", or "" (none) */
  gemmKernel(type: string, k: number): "avx512-bf16" | "avx512-f32" | "avx2-f32" | "";
  /** GB/s of memory reads by `threads` threads over a buffer of `mib` MiB, best of `reps` (benchmarks) */
  benchReadBandwidth(mib: number, threads: number, reps: number): Promise<number>;
  preprocessImage(rgb: Uint8Array, width: number, height: number, size: number, out: Float32Array): Promise<void>;
  convertRows(type: string, src: Float32Array, nRows: number, nPerRow: number, dst: Uint8Array, threads: number): Promise<void>;
  setLogCallback(callback: ((level: NativeLogLevel, text: string) => void) | null, minLevel?: NativeLogLevel): void;
  TextModel: NativeTextModelConstructor;
  VisionModel: NativeVisionModelConstructor;
  Context: NativeContextConstructor;
  MaskDecoder: NativeMaskDecoderConstructor;
}

const require = createRequire(import.meta.url);

/** @pali/native's folder, or null where it is not installed (the per-platform packages may still be). */
function nativePackageDir(): string | null {
  try {
    return dirname(require.resolve("@pali/native/package.json"));
  } catch {
    return null;
  }
}

const gpuPreferences = ["auto", "cuda", "vulkan", "metal"] as const;

/** `gpu` as the SDK and CLI take it; true is "auto". $PALI_GPU sets the default. */
export function parseGpuPreference(value: unknown, name = "gpu"): GpuPreference {
  if (value === true) return "auto";
  if (value === false || (value as string) === "false" || (value as string) === "off" || (value as string) === "cpu")
    return false;
  return expectOneOf(value as GpuPreference, name, gpuPreferences);
}

/** $PALI_GPU (as `gpu` takes it), or "auto". */
export function defaultGpuPreference(): GpuPreference {
  const env = process.env.PALI_GPU;
  return env ? parseGpuPreference(env, "PALI_GPU") : "auto";
}

/** The candidates this process would consider, best first (see native-loader.ts). */
export function nativeCandidates(): { candidates: NativeCandidate[]; problems: string[] } {
  const nativeDir = nativePackageDir();
  const here = dirname(fileURLToPath(import.meta.url));
  return findNativeCandidates({ nativeDir, searchFrom: [...(nativeDir ? [nativeDir] : []), here] });
}

/** The addon's path: $PALI_NATIVE_PATH, or the first candidate (the repository's build in the repository). */
export function nativeBinaryPath(): string {
  if (loaded) return loaded.candidate.path;
  const first = nativeCandidates().candidates[0];
  if (!first) throw new NativeBinaryError(noBinaryMessage(currentPlatform(), nativeCandidates().problems));
  return first.path;
}

export interface NativeVariantInfo {
  /** the addon loaded */
  path: string;
  /** "@pali/native-linux-x64-vulkan", or "repository build" / "PALI_NATIVE_PATH" */
  variant: string;
  source: NativeCandidate["source"];
  /** the GPU backend of the variant, null for a CPU one */
  gpu: GpuBackend | null;
  /** what was asked for */
  requested: GpuPreference;
  /** the fallback notice, when a GPU was wanted and the CPU is used */
  fallback: string | null;
  /** where ggml's CPU variants and GPU backends were loaded from */
  libDir: string;
}

let cached: NativeAddon | undefined;
let loaded: { candidate: NativeCandidate; requested: GpuPreference; notice: string | null } | undefined;

/** Which variant this process runs, once loadNative() ran; undefined before. */
export function nativeVariantInfo(): NativeVariantInfo | undefined {
  if (!loaded) return undefined;
  const c = loaded.candidate;
  return {
    path: c.path,
    variant: c.variant ? `@pali/native-${c.variant.variant}` : c.source === "env" ? "PALI_NATIVE_PATH" : "repository build",
    source: c.source,
    gpu: c.gpu,
    requested: loaded.requested,
    fallback: loaded.notice,
    libDir: c.libDir,
  };
}

/**
 * Loads the addon once per process and initialises its backends (the CPU variant for this processor, GPUs).
 * The first call chooses the variant (`gpu`, default $PALI_GPU or "auto"); later calls get the same addon.
 */
export function loadNative(options: { gpu?: GpuPreference | boolean } = {}): NativeAddon {
  if (cached) return cached;
  const requested = options.gpu === undefined ? defaultGpuPreference() : parseGpuPreference(options.gpu);
  const platform = currentPlatform();
  const { candidates, problems } = nativeCandidates();
  const { candidate, notice } = selectNative(candidates, requested, platform, problems);
  if (!existsSync(candidate.path)) {
    throw new NativeBinaryError(
      `pali's native addon is missing (looked for ${candidate.path}, from PALI_NATIVE_PATH): point it at a pali.node, ` +
        "or unset it; in the repository, build one with `corepack pnpm build` (needs cmake and a C++ compiler).",
    );
  }
  if (process.platform === "win32") process.env.PATH = envWithLibDir(process.env, candidate.libDir).PATH;
  let addon: NativeAddon;
  try {
    addon = require(candidate.path) as NativeAddon;
  } catch (cause) {
    const fix =
      candidate.source !== "installed" && candidate.source !== "repository"
        ? "rebuild it with `corepack pnpm --filter @pali/native build`, after deleting native/build"
        : `reinstall it (\`npm install --os=${platform.os} --cpu=${platform.arch}${platform.libc ? ` --libc=${platform.libc}` : ""} @pali/native\`)`;
    throw new NativeBinaryError(
      `pali's native addon at ${candidate.path} could not be loaded on ${platformLabel(platform)} ` +
        `(Node ${process.versions.node}): ${(cause as Error).message}. It was probably built for another platform or is damaged: ${fix}.`,
      { cause },
    );
  }
  addon.backendInit(candidate.libDir);
  if (notice) process.stderr.write(`${notice}\n`);
  cached = addon;
  loaded = { candidate, requested, notice };
  return addon;
}

// ---- segmentation mask decoder (pali.h pali_mask_decoder_*) ----

export interface NativeMaskDecoderInfo {
  /** codes are 0 .. codebookSize - 1 (128: <seg000> .. <seg127>) */
  codebookSize: number;
  embeddingLength: number;
  /** codes per mask (16) */
  tokenCount: number;
  gridSize: number;
  /** side of each decoded mask (64) */
  maskSize: number;
  sizeBytes: number;
  /** the ggml device holding the weights, e.g. "CPU" */
  device: string;
}

export interface NativeMaskDecoder {
  info(): NativeMaskDecoderInfo;
  /** codes: nMasks × tokenCount values; out: nMasks × maskSize² floats, [mask][y][x]. Runs off the JS thread. */
  decode(codes: Int32Array, nMasks: number, out: Float32Array, threads?: number): Promise<void>;
  dispose(): void;
}

export interface NativeMaskDecoderConstructor {
  load(path: string, options: { useGpu: boolean }): Promise<NativeMaskDecoder>;
}
