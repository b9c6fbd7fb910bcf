/**
 * A decoding context over a TextModel: KV cache and buffers for one request at a time. It counts its work in
 * flight: dispose() during work aborts it and frees the context once it has stopped; an abort (a request's
 * signal, or stop()) holds for that work only.
 */

import { DisposedError } from "@pali/base";
import { type AdapterUse, adapterArrays, adapterKey } from "./adapters.js";
import { fromNativeError } from "./errors.js";
import { NativeHandle } from "./handle.js";
import { loadNative, type NativeContext, type NativeGenerateParams, type NativeTimings } from "./native.js";
import type { TextModel } from "./text-model.js";

export type FinishReason = "eos" | "length" | "stop" | "aborted";

/** pali.h `enum pali_finish_reason`, in order */
const finishReasons: readonly FinishReason[] = ["eos", "length", "stop", "aborted"];

export interface ContextOptions {
  /** positions: image tokens + prompt + answer (× beams) */
  contextSize: number;
  /** 0: the default (physical cores) */
  threads: number;
  flashAttention: boolean;
  /** an f32 KV cache (exact parity) instead of f16 */
  kvF32: boolean;
  maxBeams: number;
  /** the prefix batch: image tokens + the longest prompt */
  batchSize: number;
  /** sequences for continuous batching (seqPrefill/seqStep), each with contextSize positions; default 1 */
  parallel?: number;
}

export type GenerateParams = NativeGenerateParams;
export type ContextTimings = NativeTimings;

export interface Generated {
  tokens: Int32Array;
  logprobs: Float32Array;
  finishReason: FinishReason;
}

export class Context extends NativeHandle<NativeContext> {
  #inFlight = 0;
  #adapterKey = "";
  #disposeWhenIdle = false;

  private constructor(handle: NativeContext) {
    super(handle, "Context");
  }

  static async create(model: TextModel, o: ContextOptions): Promise<Context> {
    try {
      const native = await loadNative().Context.create(model.handle, {
        nCtx: o.contextSize,
        threads: o.threads,
        flashAttn: o.flashAttention,
        kvF32: o.kvF32,
        beamsMax: o.maxBeams,
        nUbatch: o.batchSize,
        nParallel: o.parallel ?? 1,
      });
      return new Context(native);
    } catch (error) {
      throw fromNativeError(error, "Could not create a context");
    }
  }

  override get disposed(): boolean {
    return this.#disposeWhenIdle || super.disposed;
  }

  /** Idempotent. Work in flight is aborted; the context is freed when it has stopped. */
  override dispose(): void {
    if (this.#inFlight > 0) {
      if (!this.#disposeWhenIdle) this.native.abort(true);
      this.#disposeWhenIdle = true;
      return;
    }
    super.dispose();
  }

  /**
   * Runs one request's `work` on this context: `signal` aborts it (the native loop stops within a token), and
   * the abort is cleared afterwards so that the next request runs.
   */
  async run<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    if (this.disposed) throw new DisposedError("This Context");
    const native = this.native;
    const onAbort = () => native.abort(true);
    signal?.addEventListener("abort", onAbort);
    if (signal?.aborted) onAbort();
    this.#inFlight++;
    try {
      return await work();
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#inFlight--;
      if (this.#disposeWhenIdle) {
        if (this.#inFlight === 0) super.dispose();
      } else {
        native.abort(false);
      }
    }
  }

  /** Ends the generation in progress (stop strings); cleared when its run() ends. */
  stop(): void {
    this.native.abort(true);
  }

  prefill(imageEmbeddings: Float32Array, imageTokens: number, textIds: Int32Array): Promise<void> {
    return this.native.prefill(imageEmbeddings, imageTokens, textIds);
  }

  logits(out: Float32Array): void {
    this.native.logits(out);
  }

  async generate(params: GenerateParams, onToken: ((token: number, logprob: number) => void) | null): Promise<Generated> {
    const r = await this.native.generate(params, onToken);
    return { tokens: r.tokens, logprobs: r.logprobs, finishReason: finishReasons[r.finishReason] ?? "length" };
  }

  score(suffix: Int32Array, out: Float32Array): Promise<void> {
    return this.native.score(suffix, out);
  }

  async beamSearch(beams: number, lengthPenalty: number, maxTokens: number): Promise<Generated> {
    const r = await this.native.beamSearch(beams, lengthPenalty, maxTokens);
    return { tokens: r.tokens, logprobs: r.logprobs, finishReason: finishReasons[r.finishReason] ?? "length" };
  }

  /**
   * Continuous batching (see Scheduler): runs `seq`'s prefix alone. With params, returns the first sampled
   * token; without, copies the last logits into `logits` when given (for seqScore or inspection).
   */
  seqPrefill(
    seq: number,
    imageEmbeddings: Float32Array,
    imageTokens: number,
    textIds: Int32Array,
    params: GenerateParams | null,
    logits: Float32Array | null = null,
  ): Promise<{ token: number; logprob: number } | undefined> {
    return this.native.seqPrefill(seq, imageEmbeddings, imageTokens, textIds, params, logits);
  }

  /** One decode step for all listed sequences together: feeds tokens[i] to seqs[i], samples their next tokens. */
  seqStep(seqs: Int32Array, tokens: Int32Array, outTokens: Int32Array, outLogprobs: Float32Array): Promise<void> {
    return this.native.seqStep(seqs, tokens, outTokens, outLogprobs);
  }

  /** Teacher-forced log-probabilities of `suffix` right after seqPrefill(seq, …, null). */
  seqScore(seq: number, suffix: Int32Array, out: Float32Array): Promise<void> {
    return this.native.seqScore(seq, suffix, out);
  }

  /**
   * The LoRA adapters (TextModel.addAdapter indices, checked by the caller) that the next decodes apply; only
   * between calls. A sequence must keep one set from its prefill to its release.
   */
  setAdapters(adapters: readonly AdapterUse[]): void {
    const key = adapterKey(adapters);
    if (key === this.#adapterKey) return;
    const { loras, scales } = adapterArrays(adapters);
    this.native.setLoras(loras, scales);
    this.#adapterKey = key;
  }

  /** Frees a sequence's cache cells; only between calls (never while one runs). */
  seqRelease(seq: number): void {
    this.native.seqRelease(seq);
  }

  timings(): ContextTimings {
    return this.native.timings();
  }
}
