/** Request options: validated and defaulted once, here, then passed whole to native code. */
import {
  expectAbortSignal,
  expectBoolean,
  expectInteger,
  expectNonEmptyString,
  expectNumberInRange,
  expectObject,
  expectOneOf,
  expectString,
  type GpuPreference,
  InvalidArgumentError,
  optional,
  parseGpuPreference,
} from "@pali/core";
import type { PullOptions } from "@pali/hub";
import { type AdapterChoice, type AdapterOption, validateAdapterChoice, validateAdapterOptions } from "./adapters.js";
import { type Images, validateImages } from "./multi-image.js";

export interface LoadOptions {
  /**
   * the model GGUF (`pali convert`'s `<name>-<type>.gguf`), a cached model folder, or a model name or Hub
   * repo (`pg2-3b-mix-448`, `google/paligemma2-3b-mix-448`) that is pulled into pali's cache if needed
   */
  model: string;
  /** for names and repos: what the pull options of @pali/hub accept (type, revision, token, cacheDir, ...) */
  pull?: PullOptions;
  /** the mmproj GGUF; default: `mmproj-<name>-*.gguf` beside the model */
  mmproj?: string;
  /** CPU threads; default the physical cores (1 for tiny models, decoder width ≤ 512, where more threads are slower) */
  threads?: number;
  /**
   * the GPU backend (default "auto", or $PALI_GPU): "auto" the first GPU variant that loads, else the CPU;
   * "cuda" / "vulkan" / "metal" that one (the CPU, with one log line, when it cannot load); false the CPU.
   * true is "auto". The first load in a process chooses the native variant for the whole process.
   */
  gpu?: GpuPreference | boolean;
  /** positions per request: image tokens + prompt + answer; default image tokens + 1024 (at most 8192) */
  contextSize?: number;
  /**
   * memory-map the decoder weights (default false): ggml's CPU backend repacks quantized weights into its
   * own layout, so with mmap the file's pages and the repacked copy both stay resident (about 1.5× the file)
   */
  mmap?: boolean;
  /** the longest prompt in tokens (default 256): the image and prompt run as one batch, whose buffers scale with this */
  maxPromptTokens?: number;
  /**
   * ggml flash attention (f16 inside; default false): it slowed the 270-token prefill by a third on this
   * project's CPU machine, and moves log-probabilities by ~1e-2; try it on GPUs
   */
  flashAttention?: boolean;
  /** KV cache precision: "f16" (default) or "f32" (exact parity with transformers) */
  kvCacheType?: "f16" | "f32";
  /** the segmentation mask decoder (`pali convert --seg-vae vae-oid.npz` → mask-decoder-f32.gguf), for segment();
   * default: mask-decoder-f32.gguf beside the model, when there is one */
  maskDecoder?: string;
  /** the most beams a request may ask for (default 4); each beam needs room for its answer in the context */
  maxBeams?: number;
  /**
   * the most images one request may carry (`image: [a, b]`; default 1): the prefix batch and the default
   * contextSize (then images × image tokens + 1024, at most 8192) are sized for this many
   */
  maxImages?: number;
  /**
   * requests decoded together (continuous batching: each has its own KV sequence, and the decode steps of
   * all active requests run as one batch); default "auto" (see defaultParallel). 1 serves requests in turn.
   */
  parallel?: number | "auto";
  /** images larger than this many pixels are refused before decoding (default like sharp's) */
  pixelLimit?: number;
  /**
   * images with an embedded ICC profile (Adobe RGB, Display P3) or in CMYK: "stored" (default) reads their
   * values as they are stored, as transformers and big_vision do, so the model sees what it was trained on;
   * "convert" converts them to sRGB first
   */
  colorManagement?: "stored" | "convert";
  /**
   * LoRA adapters (pali convert --lora): `[{ path: "lora-<name>-f32.gguf", scale: 1 }]`, its vision part
   * (`mmproj-lora-<name>-f32.gguf`) found beside it. Every request applies all of them unless it chooses
   * (GenerateRequest.adapters).
   */
  adapters?: AdapterOption[];
  signal?: AbortSignal;
}

export interface SamplingOptions {
  /** 0 (default): greedy */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  seed?: number;
}

export interface GenerateRequest {
  /**
   * an image, or image embeddings from encodeImage(); or several (`[a, b]`, each either), read in order in one
   * prompt as transformers' PaliGemmaProcessor lays them out (NLVR2 pairs, video frames): see LoadOptions.maxImages
   */
  image: Images;
  prompt: string;
  /** default 128 */
  maxTokens?: number;
  sampling?: SamplingOptions;
  /** stop when the answer contains one of these strings (not included in the text) */
  stop?: string[];
  /** beam search with this many beams (default 1: greedy or sampling); results come at the end, not streamed */
  beams?: number;
  /** beam search: hypothesis score = sum of log-probabilities / length^lengthPenalty (default 1) */
  lengthPenalty?: number;
  /** the loaded adapters this request applies, by name (default all of them; [] for the base model) */
  adapters?: AdapterChoice[];
  signal?: AbortSignal;
}

export interface ScoreRequest {
  /** as GenerateRequest.image */
  image: Images;
  prompt: string;
  suffix: string;
  /** as GenerateRequest.adapters */
  adapters?: AdapterChoice[];
  signal?: AbortSignal;
}

export interface ValidatedGenerate {
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  seed: number;
  stop: string[];
  beams: number;
  lengthPenalty: number;
  adapters: AdapterChoice[] | undefined;
  signal: AbortSignal | undefined;
}

export function validateLoad(options: unknown) {
  const o = expectObject(options, "options") as unknown as LoadOptions;
  return {
    model: expectNonEmptyString(o.model, "model"),
    mmproj: optional(o.mmproj, undefined as string | undefined, (v) => expectNonEmptyString(v, "mmproj")),
    pull: optional(o.pull, {} as PullOptions, (v) => expectObject(v, "pull") as PullOptions),
    threads: optional(o.threads, 0, (v) => expectInteger(v, "threads", 1, 1024)),
    gpu: optional(o.gpu, undefined as GpuPreference | undefined, (v) => parseGpuPreference(v)),
    contextSize: optional(o.contextSize, 0, (v) => expectInteger(v, "contextSize", 16, 1 << 17)),
    mmap: optional(o.mmap, false, (v) => expectBoolean(v, "mmap")),
    maxPromptTokens: optional(o.maxPromptTokens, 256, (v) => expectInteger(v, "maxPromptTokens", 8, 1 << 16)),
    flashAttention: optional(o.flashAttention, false, (v) => expectBoolean(v, "flashAttention")),
    kvF32: optional(o.kvCacheType, "f16", (v) => expectOneOf(v, "kvCacheType", ["f16", "f32"] as const)) === "f32",
    pixelLimit: optional(o.pixelLimit, 0x3fff * 0x3fff, (v) => expectInteger(v, "pixelLimit", 1)),
    colorManagement: optional(o.colorManagement, "stored" as const, (v) =>
      expectOneOf(v, "colorManagement", ["stored", "convert"] as const),
    ),
    maxBeams: optional(o.maxBeams, 4, (v) => expectInteger(v, "maxBeams", 1, 16)),
    maxImages: optional(o.maxImages, 1, (v) => expectInteger(v, "maxImages", 1, 256)),
    parallel: optional(o.parallel, "auto" as number | "auto", (v) => (v === "auto" ? v : expectInteger(v, "parallel", 1, 64))),
    maskDecoder: optional(o.maskDecoder, undefined as string | undefined, (v) => expectNonEmptyString(v, "maskDecoder")),
    adapters: validateAdapterOptions(o.adapters),
    signal: expectAbortSignal(o.signal, "signal"),
  };
}

export function validateGenerate(request: unknown): ValidatedGenerate & { image: GenerateRequest["image"]; prompt: string } {
  const r = expectObject(request, "request") as unknown as GenerateRequest;
  validateImages(r.image);
  const s = (r.sampling === undefined ? {} : expectObject(r.sampling, "sampling")) as SamplingOptions;
  const stop = optional(r.stop, [] as string[], (v) => {
    if (!Array.isArray(v)) throw new InvalidArgumentError("Expected an array of strings for stop");
    return v.map((x, i) => expectNonEmptyString(x, `stop[${i}]`));
  });
  return {
    image: r.image,
    prompt: expectString(r.prompt, "prompt"),
    maxTokens: optional(r.maxTokens, 128, (v) => expectInteger(v, "maxTokens", 1, 1 << 16)),
    temperature: optional(s.temperature, 0, (v) => expectNumberInRange(v, "temperature", 0, 100)),
    topK: optional(s.topK, 0, (v) => expectInteger(v, "topK", 0, 1 << 20)),
    topP: optional(s.topP, 1, (v) => expectNumberInRange(v, "topP", 0, 1)),
    minP: optional(s.minP, 0, (v) => expectNumberInRange(v, "minP", 0, 1)),
    repeatPenalty: optional(s.repeatPenalty, 1, (v) => expectNumberInRange(v, "repeatPenalty", 0.01, 100)),
    seed: optional(s.seed, 0, (v) => expectInteger(v, "seed", 0, 0xffffffff)),
    stop,
    beams: optional(r.beams, 1, (v) => expectInteger(v, "beams", 1, 16)),
    lengthPenalty: optional(r.lengthPenalty, 1, (v) => expectNumberInRange(v, "lengthPenalty", -10, 10)),
    adapters: validateAdapterChoice(r.adapters),
    signal: expectAbortSignal(r.signal, "signal"),
  };
}

export function validateScore(request: unknown) {
  const r = expectObject(request, "request") as unknown as ScoreRequest;
  validateImages(r.image);
  return {
    image: r.image,
    prompt: expectString(r.prompt, "prompt"),
    suffix: expectString(r.suffix, "suffix"),
    adapters: validateAdapterChoice(r.adapters),
    signal: expectAbortSignal(r.signal, "signal"),
  };
}
