/**
 * The native addon: where it is, how it is loaded, and its whole contract, typed in this one file.
 * Everything above this file talks to native code through these types only.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { NativeBinaryError } from "./errors.js";

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
  ggufMetadataJson(path: string): Promise<string>;
  quantize(input: string, output: string, type: string, threads: number): Promise<void>;
  rowSize(type: string, nPerRow: number): number;
  /** GFLOP/s of an n×n matrix product on the CPU backend with weights of a ggml type ("bf16", "q4_K", …) (benchmarks) */
  benchMatmul(n: number, threads: number, type: string, reps: number): Promise<number>;
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

/** The addon's path: $PALI_NATIVE_PATH, or the build output of @pali/native. */
export function nativeBinaryPath(): string {
  const override = process.env.PALI_NATIVE_PATH;
  if (override) return override;
  let packageDir: string;
  try {
    packageDir = dirname(require.resolve("@pali/native/package.json"));
  } catch (cause) {
    throw new NativeBinaryError(
      "The @pali/native package is not installed. Run `corepack pnpm install` at the repository root.",
      { cause },
    );
  }
  return join(packageDir, "build", "Release", "pali.node");
}

let cached: NativeAddon | undefined;

/** Loads the addon once and initialises its backends (the CPU variant for this processor, GPUs). */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const path = nativeBinaryPath();
  if (!existsSync(path)) {
    throw new NativeBinaryError(
      `pali's native addon is missing (looked for ${path}). Build it with \`corepack pnpm build\` ` +
        "(needs cmake and a C++ compiler), or reinstall pali for this platform.",
    );
  }
  let addon: NativeAddon;
  try {
    addon = require(path) as NativeAddon;
  } catch (cause) {
    throw new NativeBinaryError(
      `pali's native addon at ${path} could not be loaded on ${process.platform}-${process.arch} ` +
        `(Node ${process.versions.node}): ${(cause as Error).message}. It was probably built for another ` +
        "platform or is damaged: rebuild it with `corepack pnpm --filter @pali/native build`, " +
        "after deleting native/build.",
      { cause },
    );
  }
  addon.backendInit(dirname(path));
  cached = addon;
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
