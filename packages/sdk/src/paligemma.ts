/**
 * PaliGemma: one loaded model (decoder + image encoder) and a request queue over one context, so that
 * concurrent calls are served in turn and no request ever sees another's cache.
 */

import { availableParallelism } from "node:os";
import {
  AbortError,
  Context,
  ContextOverflowError,
  DisposedError,
  defaultGpuPreference,
  type FinishReason,
  fromNativeError,
  InvalidArgumentError,
  loadNative,
  MaskDecoder,
  PaliError,
  Scheduler,
  systemInfo,
  Tensor,
  TextModel,
  throwIfAborted,
  UnsupportedModelError,
  VisionModel,
} from "@pali/core";
import { resolveModel } from "@pali/hub";
import { buildPrefixIds, buildSuffixIds, Tokenizer } from "@pali/tokenizer";
import { type AdapterChoice, type AdapterSelection, Adapters, type LoadedAdapter, validateAdapterChoice } from "./adapters.js";
import { type AnswerChunk, AnswerStream } from "./answer.js";
import { decodeImage, type ImageDecoding, type ImageInput, preprocessImage } from "./image.js";
import {
  type LabelImagesOptions,
  type LabelItem,
  type LabelRecord,
  type LabelSpec,
  labelItems,
  labelOne,
  planLabels,
} from "./label.js";
import { findMaskDecoder, type ModelFiles, openModelFiles } from "./model-files.js";
import { checkEmbeddings, checkPositions, concatEmbeddings, type ImageElement, type Images, imageList } from "./multi-image.js";
import {
  type GenerateRequest,
  type LoadOptions,
  type ScoreRequest,
  validateGenerate,
  validateLoad,
  validateScore,
} from "./options.js";
import { defaultParallel } from "./parallel.js";
import {
  askTask,
  captionTask,
  type DetectResult,
  detectTask,
  ocrTask,
  type SegmentResult,
  segmentTask,
  type TaskHost,
  type TaskOptions,
  type TextResult,
} from "./tasks.js";

export type { FinishReason };

export interface Timings {
  imageEncodeMs: number;
  prefillMs: number;
  prefillTokens: number;
  decodeMs: number;
  decodedTokens: number;
  totalMs: number;
}

export interface GenerateResult {
  text: string;
  /** generated token ids, the final <eos> included when the model produced it */
  tokens: number[];
  /** each token's log-probability under the model */
  logprobs: number[];
  finishReason: FinishReason;
  timings: Timings;
}

export type StreamChunk = AnswerChunk;

export interface ScoreResult {
  /** the suffix's tokens, then <eos> */
  tokens: number[];
  logprobs: number[];
  total: number;
}

export interface ModelInfo {
  version: 1 | 2;
  imageSize: number;
  /** image tokens of one image (a request with k images has k × this many) */
  imageTokens: number;
  /** the most images one request may carry (LoadOptions.maxImages) */
  maxImages: number;
  contextSize: number;
  vocabSize: number;
  embeddingLength: number;
  model: string;
  mmproj: string;
  device: string;
  /** requests decoded together (LoadOptions.parallel, resolved) */
  parallel: number;
  /** the LoRA adapters loaded on this model (LoadOptions.adapters) */
  adapters: LoadedAdapter[];
}

interface RunResult {
  text: string;
  tokens: ArrayLike<number>;
  logprobs: ArrayLike<number>;
  finishReason: FinishReason;
  timings: Timings;
}

function toGenerateResult(result: RunResult): GenerateResult {
  return {
    text: result.text,
    tokens: Array.from(result.tokens),
    logprobs: Array.from(result.logprobs),
    finishReason: result.finishReason,
    timings: result.timings,
  };
}

export class PaliGemma {
  readonly info: ModelInfo;
  readonly tokenizer: Tokenizer;
  #text: TextModel;
  #vision: VisionModel;
  #context: Context;
  #files: ModelFiles;
  #threads: number;
  #decoding: ImageDecoding;
  #queue: Promise<unknown> = Promise.resolve();
  #disposed = false;
  #maxBeams: number;
  #maskDecoder: MaskDecoder | undefined;
  #maxPromptTokens: number;
  /** continuous batching over #context when parallel > 1; otherwise #queue serves requests in turn */
  #scheduler: Scheduler | undefined;
  #adapters: Adapters;
  /**
   * With batching: whether image encodes (one at a time) run beside the decode steps, which pays when the two
   * together use at most the machine's cores (tiny models run on one thread); otherwise an encode runs between
   * two steps, as beside one both would split the same cores (8 concurrent PG1-3B captions through the server:
   * 96 s beside, 54 s between, 65 s one by one on 2 cores; the demo model: 73 requests/s beside, 44 between).
   */
  #encodeBesideDecode = false;
  #encodeLane: Promise<unknown> = Promise.resolve();

  private constructor(
    files: ModelFiles,
    text: TextModel,
    vision: VisionModel,
    context: Context,
    contextSize: number,
    threads: number,
    decoding: ImageDecoding,
    maxBeams: number,
    maskDecoder: MaskDecoder | undefined,
    maxPromptTokens: number,
    parallel: number,
    adapters: Adapters,
    maxImages: number,
  ) {
    this.#adapters = adapters;
    this.#maxPromptTokens = maxPromptTokens;
    this.#maxBeams = maxBeams;
    this.#maskDecoder = maskDecoder;
    this.#files = files;
    this.#text = text;
    this.#vision = vision;
    this.#context = context;
    this.#threads = threads;
    this.#decoding = decoding;
    this.tokenizer = Tokenizer.fromGGUF(files.model);
    if (parallel > 1) this.#scheduler = new Scheduler(context, parallel, this.tokenizer.eosId);
    this.#encodeBesideDecode = 2 * (threads || systemInfo().defaultThreads) <= availableParallelism();
    const vinfo = vision.info();
    this.info = {
      version: files.version,
      imageSize: files.imageSize,
      imageTokens: files.imageTokenCount,
      maxImages,
      contextSize,
      vocabSize: text.info().vocabSize,
      embeddingLength: files.embeddingLength,
      model: files.model.path,
      mmproj: files.mmproj.path,
      device: vinfo.device,
      parallel,
      adapters: adapters.loaded,
    };
  }

  /** Loads a model and its mmproj: `await PaliGemma.load({ model: "pg2-224-q8_0.gguf" })`. */
  static async load(options: LoadOptions): Promise<PaliGemma> {
    const o = validateLoad(options);
    throwIfAborted(o.signal);
    // The first load chooses the native variant (and so the GPU backend) for the process.
    loadNative(o.gpu === undefined ? {} : { gpu: o.gpu });
    const gpu = (o.gpu ?? defaultGpuPreference()) !== false;
    // A name, repo id or cache folder becomes a pair of files (pulled and converted on first use).
    const resolved = o.mmproj
      ? { model: o.model, mmproj: o.mmproj }
      : await resolveModel(o.model, { ...o.pull, ...(o.signal ? { signal: o.signal } : {}) });
    const files = await openModelFiles(resolved.model, o.mmproj ?? resolved.mmproj);
    throwIfAborted(o.signal);
    const contextSize = o.contextSize || Math.min(8192, o.maxImages * files.imageTokenCount + 1024);
    if (contextSize < files.imageTokenCount + 4) {
      throw new InvalidArgumentError(
        `Expected contextSize of at least ${files.imageTokenCount + 4} (the image tokens and a prompt) but received ${contextSize}`,
      );
    }
    // Tiny models (the demo, test fixtures) spend more on thread wake-ups and barriers than on work: the
    // demo model labels 38.5 images/s on one thread and 16.1 on two (benchmarks/README.md, labeling).
    const threads = o.threads || (files.embeddingLength <= 512 ? 1 : 0);
    const parallel = o.parallel === "auto" ? defaultParallel(files.model, { gpu, contextSize, kvF32: o.kvF32 }) : o.parallel;
    const text = await TextModel.load(files.model.path, { gpuLayers: gpu ? -1 : 0, useMmap: o.mmap });
    let vision: VisionModel | undefined;
    let maskDecoder: MaskDecoder | undefined;
    try {
      vision = await VisionModel.load(files.mmproj.path, { gpu });
      const maskDecoderPath = o.maskDecoder ?? (await findMaskDecoder(resolved.model));
      if (maskDecoderPath) maskDecoder = await MaskDecoder.load(maskDecoderPath, { gpu });
      // Adapters go in before the context: libllama allocates their tensors beside the weights.
      const adapters = await Adapters.load(o.adapters, text, vision);
      const context = await Context.create(text, {
        contextSize,
        threads,
        flashAttention: o.flashAttention,
        kvF32: o.kvF32,
        maxBeams: o.maxBeams,
        batchSize: Math.min(contextSize, o.maxImages * files.imageTokenCount + o.maxPromptTokens + 2),
        parallel,
      });
      return new PaliGemma(
        files,
        text,
        vision,
        context,
        contextSize,
        threads,
        { pixelLimit: o.pixelLimit, colorManagement: o.colorManagement },
        o.maxBeams,
        maskDecoder,
        o.maxPromptTokens,
        parallel,
        adapters,
        o.maxImages,
      );
    } catch (error) {
      maskDecoder?.dispose();
      vision?.dispose();
      text.dispose();
      throw fromNativeError(error, `Could not create a context for ${files.model.path}`);
    }
  }

  /** Image embeddings [N, D] that generate() and score() accept in place of the image: encode once, ask many. */
  async encodeImage(
    image: ImageInput,
    options: { signal?: AbortSignal; adapters?: AdapterChoice[] } = {},
  ): Promise<Tensor<"f32">> {
    this.#live();
    const { vision } = this.#adapters.select(validateAdapterChoice(options.adapters));
    throwIfAborted(options.signal);
    const rgb = await decodeImage(image, this.#decoding.pixelLimit, { colorManagement: this.#decoding.colorManagement });
    throwIfAborted(options.signal);
    const pixels = await preprocessImage(rgb, this.#files.imageSize);
    const embeddings = await this.#vision.encode(pixels, 1, {
      threads: this.#threads,
      adapters: vision,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return embeddings.reshape([this.#files.imageTokenCount, this.#files.embeddingLength]);
  }

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    return toGenerateResult(await this.#run(request, () => {}));
  }

  /**
   * Generated text as it is produced: `for await (const { text } of pg.stream({ image, prompt }))`. The
   * generator's return value (`done: true`) is the whole result, with its finish reason and timings.
   */
  async *stream(request: GenerateRequest): AsyncGenerator<StreamChunk, GenerateResult> {
    const pending: StreamChunk[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let failure: unknown;
    let final: GenerateResult | undefined;
    const run = this.#run(request, (chunk) => {
      pending.push(chunk);
      wake?.();
    }).then(
      (result) => {
        final = toGenerateResult(result);
        done = true;
        wake?.();
      },
      (error: unknown) => {
        failure = error;
        done = true;
        wake?.();
      },
    );
    while (true) {
      // Tokens already generated when the signal fires are not delivered: the native loop stops within one
      // token, but on a small model it may have queued many before this loop runs again.
      if (request.signal?.aborted) break;
      const next = pending.shift();
      if (next) {
        yield next;
        continue;
      }
      if (done) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
    await run;
    if (failure !== undefined) throw failure;
    if (request.signal?.aborted) throw new AbortError("The request was aborted", { cause: request.signal.reason });
    return final as GenerateResult;
  }

  /** Teacher-forced log-probabilities of `suffix` (then <eos>) after the image and prompt, in one pass. */
  async score(request: ScoreRequest): Promise<ScoreResult> {
    const r = validateScore(request);
    const adapters = this.#adapters.select(r.adapters);
    const prepare = async () => {
      const { images, imageTokens } = this.#images(r.image);
      const prefix = this.#prefix(r.prompt);
      const suffix = buildSuffixIds(this.tokenizer, r.suffix);
      this.#checkPrompt(prefix, imageTokens);
      checkPositions({ ...this.#positions(imageTokens), text: prefix.length + suffix.length }, "the prompt and suffix");
      const { embeddings } = await this.#embeddings(images, r.signal, r.adapters);
      return { embeddings, imageTokens, prefix: Int32Array.from(prefix), suffix };
    };
    const total = (suffix: number[], out: Float32Array) => {
      const logprobs = Array.from(out);
      return { tokens: suffix, logprobs, total: logprobs.reduce((a, b) => a + b, 0) };
    };
    const scheduler = this.#scheduler;
    if (scheduler) {
      return this.#guard(r.signal, async () => {
        const p = await prepare();
        const prefix = { ...this.#sequencePrefix(p, adapters), signal: r.signal };
        return total(p.suffix, await scheduler.score(prefix, Int32Array.from(p.suffix)));
      });
    }
    return this.#exclusive(r.signal, async (context) => {
      const p = await prepare();
      context.setAdapters(adapters.text);
      await context.prefill(p.embeddings, p.imageTokens, p.prefix);
      const out = new Float32Array(p.suffix.length);
      await context.score(Int32Array.from(p.suffix), out);
      return total(p.suffix, out);
    });
  }

  /** `caption {lang}` (or `describe {lang}` with long: true) → the caption. */
  caption(image: Images, options: TaskOptions & { lang?: string; long?: boolean } = {}): Promise<TextResult> {
    return captionTask(this.#taskHost(), image, options);
  }

  /** `answer {lang} {question}` → the answer. */
  ask(image: Images, question: string, options: TaskOptions & { lang?: string } = {}): Promise<TextResult> {
    return askTask(this.#taskHost(), image, question, options);
  }

  /** `ocr` → the text in the image. */
  ocr(image: Images, options: TaskOptions = {}): Promise<TextResult> {
    return ocrTask(this.#taskHost(), image, options);
  }

  /** `detect a ; b` → boxes in original-image pixels, with labels and confidences. */
  detect(
    image: ImageInput | Tensor<"f32">,
    labels: string | readonly string[],
    options: TaskOptions = {},
  ): Promise<DetectResult> {
    return detectTask(this.#taskHost(), image, labels, options);
  }

  /** `segment {expression}` (several: `a ; b`) → boxes and masks at image size (needs the mask decoder). */
  segment(
    image: ImageInput | Tensor<"f32">,
    expression: string | readonly string[],
    options: TaskOptions = {},
  ): Promise<SegmentResult> {
    return segmentTask(this.#taskHost(), image, expression, options);
  }

  /** How this model decodes images (LoadOptions.pixelLimit, colorManagement), for code that decodes them first. */
  get imageDecoding(): ImageDecoding {
    return { ...this.#decoding };
  }

  /** Whether segment() can run: the mask decoder was found or given at load. */
  get canSegment(): boolean {
    return this.#maskDecoder !== undefined;
  }

  /**
   * One task over many images: `for await (const r of pg.labelImages(["a.png", "b.jpg"], { task: "caption" }))`.
   * Records come in input order; an image that cannot be labeled gives a record with `error` and the run goes on.
   */
  labelImages(
    images: Iterable<LabelItem> | AsyncIterable<LabelItem>,
    spec: LabelSpec,
    options: LabelImagesOptions = {},
  ): AsyncGenerator<LabelRecord> {
    this.#live();
    const plan = this.#labelPlan(spec);
    return labelItems(this, images, plan, this.#decoding, options);
  }

  /** The labeling record of one image (what labelImages yields for it). */
  label(image: LabelItem, spec: LabelSpec, options: { signal?: AbortSignal } = {}): Promise<LabelRecord> {
    this.#live();
    return labelOne(this, image, this.#labelPlan(spec), this.#decoding, options.signal);
  }

  #labelPlan(spec: LabelSpec) {
    const plan = planLabels(spec);
    if (plan.task === "segment" && !this.#maskDecoder) {
      throw new UnsupportedModelError(
        "Segmentation needs the mask decoder: put mask-decoder-f32.gguf (pali convert --seg-vae) beside the model, or pass it (pali --mask-decoder FILE, SDK maskDecoder: FILE)",
      );
    }
    return plan;
  }

  /** A prefix must fit the context and the prefix batch (loaded with maxPromptTokens). */
  #checkPrompt(prefix: number[], imageTokens: number): void {
    checkPositions({ ...this.#positions(imageTokens), text: prefix.length }, "the prompt");
    if (prefix.length > this.#maxPromptTokens + 2) {
      throw new ContextOverflowError(
        `The prompt has ${prefix.length} tokens; this model was loaded for at most ${this.#maxPromptTokens} (load with a larger maxPromptTokens)`,
      );
    }
  }

  #taskHost(): TaskHost {
    this.#live();
    return {
      tokenizer: this.tokenizer,
      generate: (r) => this.generate(r),
      encodeImage: (i, o) => this.encodeImage(i, o),
      maskDecoder: this.#maskDecoder,
      decoding: this.#decoding,
    };
  }

  /** The logits (full vocabulary) of the first answer token after the image and prompt. */
  async nextTokenLogits(request: Omit<ScoreRequest, "suffix">): Promise<Float32Array> {
    const r = validateScore({ ...request, suffix: "" });
    const adapters = this.#adapters.select(r.adapters);
    const prepare = async () => {
      const { images, imageTokens } = this.#images(r.image);
      const prefix = this.#prefix(r.prompt);
      this.#checkPrompt(prefix, imageTokens);
      const { embeddings } = await this.#embeddings(images, r.signal, r.adapters);
      return { embeddings, imageTokens, prefix: Int32Array.from(prefix) };
    };
    const scheduler = this.#scheduler;
    if (scheduler) {
      return this.#guard(r.signal, async () => {
        const p = await prepare();
        const prefix = { ...this.#sequencePrefix(p, adapters), signal: r.signal };
        return scheduler.logits(prefix, new Float32Array(this.info.vocabSize));
      });
    }
    return this.#exclusive(r.signal, async (context) => {
      const p = await prepare();
      context.setAdapters(adapters.text);
      await context.prefill(p.embeddings, p.imageTokens, p.prefix);
      const logits = new Float32Array(this.info.vocabSize);
      context.logits(logits);
      return logits;
    });
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Frees the model; a request in flight is aborted and fails with ERR_DISPOSED. Idempotent. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    // Work in flight is aborted; each handle frees itself once its work has stopped.
    const draining = this.#scheduler?.dispose();
    this.#context.dispose();
    this.#vision.dispose();
    await Promise.all([this.#queue.catch(() => {}), draining, this.#encodeLane.catch(() => {})]);
    this.#maskDecoder?.dispose();
    this.#text.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  #live(): void {
    if (this.#disposed) throw new DisposedError("This PaliGemma model");
  }

  /** The prompt layout of SPEC §2.1: [<bos>][prompt + "\n"] after the image tokens, as HF tokenizes it. */
  #prefix(prompt: string): number[] {
    const ids = buildPrefixIds(this.tokenizer, {
      prompt,
      imageTokenCount: this.info.imageTokens,
      imageTokenId: this.#files.imageTokenId,
      parseSpecial: true,
    });
    return ids.slice(this.info.imageTokens);
  }

  /** A request's prefix for the scheduler, with the adapters its decoder applies. */
  #sequencePrefix(p: { embeddings: Float32Array; imageTokens: number; prefix: Int32Array }, adapters: AdapterSelection) {
    return { imageEmbeddings: p.embeddings, imageTokens: p.imageTokens, textIds: p.prefix, adapters: adapters.text };
  }

  #positions(imageTokens: number) {
    return { imageTokens, perImage: this.info.imageTokens, contextSize: this.info.contextSize };
  }

  /** A request's images as a list and their image tokens, checked before any is encoded. */
  #images(image: Images) {
    const images = imageList(image, this.info.maxImages);
    return { images, imageTokens: images.length * this.info.imageTokens };
  }

  /** The images' embeddings, one after another ([k·N, D]), encoding those that are not encodeImage() tensors. */
  async #embeddings(
    images: readonly ImageElement[],
    signal: AbortSignal | undefined,
    adapters: AdapterChoice[] | undefined,
  ): Promise<{ embeddings: Float32Array; ms: number }> {
    const t0 = performance.now();
    const parts: Float32Array[] = [];
    for (const one of images) parts.push(await this.#embeddingsOf(one, signal, adapters));
    return { embeddings: concatEmbeddings(parts), ms: performance.now() - t0 };
  }

  async #embeddingsOf(
    image: ImageElement,
    signal: AbortSignal | undefined,
    adapters: AdapterChoice[] | undefined,
  ): Promise<Float32Array> {
    if (image instanceof Tensor) return checkEmbeddings(image, this.info.imageTokens, this.info.embeddingLength);
    const encode = () => this.encodeImage(image, { ...(signal ? { signal } : {}), ...(adapters ? { adapters } : {}) });
    let tensor: Tensor<"f32">;
    if (!this.#scheduler) {
      tensor = await encode();
    } else if (this.#encodeBesideDecode) {
      const turn = this.#encodeLane.then(encode);
      this.#encodeLane = turn.catch(() => {});
      tensor = await turn;
    } else {
      tensor = await this.#scheduler.between(signal, encode);
    }
    return tensor.data;
  }

  /** What a failed request throws: ERR_DISPOSED after dispose(), ERR_ABORTED after its signal, else a PaliError. */
  #failure(error: unknown, signal: AbortSignal | undefined): unknown {
    if (this.#disposed) return new DisposedError("This PaliGemma model");
    if (signal?.aborted) return new AbortError("The request was aborted", { cause: signal.reason });
    return error instanceof PaliError ? error : fromNativeError(error, "The request failed");
  }

  /** A batched request (parallel > 1): `work` queues itself on the scheduler; errors are mapped here. */
  async #guard<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    this.#live();
    throwIfAborted(signal);
    try {
      const result = await work();
      if (this.#disposed) throw new DisposedError("This PaliGemma model");
      throwIfAborted(signal);
      return result;
    } catch (error) {
      throw this.#failure(error, signal);
    }
  }

  /** Runs `work` alone on the context, wiring abort and disposal to it. */
  #exclusive<T>(signal: AbortSignal | undefined, work: (context: Context) => Promise<T>): Promise<T> {
    this.#live();
    const scheduler = this.#scheduler;
    if (scheduler) return this.#guard(signal, () => scheduler.exclusive(signal, work));
    const run = this.#queue.then(async () => {
      this.#live();
      throwIfAborted(signal);
      const context = this.#context;
      try {
        const result = await context.run(signal, () => work(context));
        if (this.#disposed) throw new DisposedError("This PaliGemma model");
        throwIfAborted(signal);
        return result;
      } catch (error) {
        throw this.#failure(error, signal);
      }
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  async #beamSearch(
    context: Context,
    r: ReturnType<typeof validateGenerate>,
    onChunk: (chunk: StreamChunk) => void,
    started: number,
    imageMs: number,
  ) {
    const result = await context.beamSearch(r.beams, r.lengthPenalty, r.maxTokens);
    const decoder = this.tokenizer.createStreamDecoder();
    for (const [i, token] of result.tokens.entries())
      onChunk({ text: decoder.push(token), token, logprob: result.logprobs[i] as number });
    const t = context.timings();
    const finishReason = result.finishReason;
    return {
      text: this.tokenizer.decode(Array.from(result.tokens)),
      tokens: result.tokens,
      logprobs: result.logprobs,
      finishReason,
      timings: {
        imageEncodeMs: imageMs,
        prefillMs: t.prefillMs,
        prefillTokens: t.prefillTokens,
        decodeMs: performance.now() - started - t.prefillMs - imageMs,
        decodedTokens: result.tokens.length,
        totalMs: performance.now() - started,
      },
    };
  }

  /** The image's embeddings and the prompt's ids, checked against the context and the request's options. */
  async #prepare(r: ReturnType<typeof validateGenerate>) {
    const adapters = this.#adapters.select(r.adapters);
    const { images, imageTokens } = this.#images(r.image);
    const prefix = this.#prefix(r.prompt);
    this.#checkPrompt(prefix, imageTokens);
    const maxTokens = Math.min(r.maxTokens, this.info.contextSize - prefix.length - imageTokens - 1);
    if (r.beams > this.#maxBeams) {
      throw new InvalidArgumentError(
        `Expected at most ${this.#maxBeams} beams (load with a larger maxBeams) but received ${r.beams}`,
      );
    }
    if (r.beams > 1 && prefix.length + imageTokens + 1 + r.beams * r.maxTokens > this.info.contextSize) {
      throw new ContextOverflowError(
        `${r.beams} beams of ${r.maxTokens} tokens do not fit in the context of ${this.info.contextSize}; lower maxTokens or beams, or load with a larger contextSize`,
      );
    }
    const { embeddings, ms } = await this.#embeddings(images, r.signal, r.adapters);
    const params = {
      maxTokens,
      temperature: r.temperature,
      topK: r.topK,
      topP: r.topP,
      minP: r.minP,
      repeatPenalty: r.repeatPenalty,
      repeatLastN: 64,
      seed: r.seed,
    };
    return { embeddings, imageTokens, imageMs: ms, prefix: Int32Array.from(prefix), params, adapters };
  }

  #run(request: GenerateRequest, onChunk: (chunk: StreamChunk) => void) {
    const r = validateGenerate(request);
    const scheduler = this.#scheduler;
    if (scheduler) return this.#guard(r.signal, () => this.#runBatched(scheduler, r, onChunk));
    return this.#exclusive(r.signal, async (context) => {
      const started = performance.now();
      const p = await this.#prepare(r);
      context.setAdapters(p.adapters.text);
      await context.prefill(p.embeddings, p.imageTokens, p.prefix);
      if (r.beams > 1) return this.#beamSearch(context, r, onChunk, started, p.imageMs);
      let finished = false;
      const answer = new AnswerStream(this.tokenizer, r.stop, onChunk);
      const onToken = (token: number, logprob: number) => {
        if (!finished && !answer.push(token, logprob)) context.stop();
      };
      const result = await context.generate(p.params, onToken);
      // Thread-safe calls may arrive after the promise: hand over what the stream has not shown yet, then ignore them.
      for (let i = answer.count; i < result.tokens.length && !answer.stopped; i++)
        answer.push(result.tokens[i] as number, result.logprobs[i] as number);
      finished = true;
      const stopped = answer.stopped;
      const count = stopped ? answer.count : result.tokens.length;
      answer.finish();
      const t = context.timings();
      let finishReason = result.finishReason;
      if (stopped) finishReason = "stop";
      else if (finishReason === "aborted" && !r.signal?.aborted && !this.#disposed) finishReason = "length";
      const timings: Timings = {
        imageEncodeMs: p.imageMs,
        prefillMs: t.prefillMs,
        prefillTokens: t.prefillTokens,
        decodeMs: t.decodeMs,
        decodedTokens: t.decodedTokens,
        totalMs: performance.now() - started,
      };
      return {
        text: answer.text,
        tokens: result.tokens.subarray(0, count),
        logprobs: result.logprobs.subarray(0, count),
        finishReason,
        timings,
      };
    });
  }

  /** One request of many decoding together (parallel > 1); beam search waits for the context to itself. */
  async #runBatched(scheduler: Scheduler, r: ReturnType<typeof validateGenerate>, onChunk: (chunk: StreamChunk) => void) {
    const started = performance.now();
    const p = await this.#prepare(r);
    if (r.beams > 1) {
      return scheduler.exclusive(r.signal, async (context) => {
        context.setAdapters(p.adapters.text);
        await context.prefill(p.embeddings, p.imageTokens, p.prefix);
        return this.#beamSearch(context, r, onChunk, started, p.imageMs);
      });
    }
    const answer = new AnswerStream(this.tokenizer, r.stop, onChunk);
    const result = await scheduler.generate({
      ...this.#sequencePrefix(p, p.adapters),
      signal: r.signal,
      params: p.params,
      onToken: (token, logprob) => answer.push(token, logprob),
    });
    answer.finish();
    const timings: Timings = {
      imageEncodeMs: p.imageMs,
      prefillMs: result.prefillMs,
      prefillTokens: p.imageTokens + p.prefix.length,
      decodeMs: result.decodeMs,
      decodedTokens: result.tokens.length,
      totalMs: performance.now() - started,
    };
    return {
      text: answer.text,
      tokens: result.tokens,
      logprobs: result.logprobs,
      finishReason: result.finishReason,
      timings,
    };
  }
}
