/**
 * Continuous batching over one Context: up to `parallel` requests decode together, each in its own KV
 * sequence. One loop owns the context, so native calls never overlap: a waiting request's prefix runs
 * between two decode steps (at most one per step, so active requests keep moving), then it joins the step
 * that feeds every active request its last token in one llama_decode. Abort, errors and stop conditions stay
 * per request; work that needs the whole context (beam search) waits until every sequence is released.
 */

import { AbortError, DisposedError, PaliError } from "@pali/base";
import { type AdapterUse, adapterKey } from "./adapters.js";
import type { Context, FinishReason, GenerateParams } from "./context.js";
import { fromNativeError } from "./errors.js";

export interface SequencePrefix {
  /** imageTokens × embedding length floats, as the projector made them */
  imageEmbeddings: Float32Array;
  imageTokens: number;
  /** <bos>, prompt, "\n" */
  textIds: Int32Array;
  signal?: AbortSignal | undefined;
  /** LoRA adapters for this request (default none); requests with other sets decode in other steps */
  adapters?: readonly AdapterUse[] | undefined;
}

export interface SequenceRequest extends SequencePrefix {
  params: GenerateParams;
  /** each generated token as it comes; return false to end the request here (finish reason "stop") */
  onToken?: (token: number, logprob: number) => boolean | undefined;
}

export interface SequenceResult {
  tokens: Int32Array;
  logprobs: Float32Array;
  finishReason: FinishReason;
  /** the request's own prefix (ms, wall) */
  prefillMs: number;
  /** from its first token to its last, while it shared steps with the others (ms, wall) */
  decodeMs: number;
}

interface Job {
  kind: "generate" | "score" | "logits";
  request: SequenceRequest | SequencePrefix;
  suffix?: Int32Array;
  out?: Float32Array;
  resolve: (value: never) => void;
  reject: (error: unknown) => void;
}

interface Active {
  job: Job;
  request: SequenceRequest;
  seq: number;
  /** adapterKey of the request's adapters */
  group: string;
  tokens: number[];
  logprobs: number[];
  prefillMs: number;
  decodeStart: number;
}

interface Exclusive {
  work: (context: Context) => Promise<unknown>;
  signal: AbortSignal | undefined;
  resolve: (value: never) => void;
  reject: (error: unknown) => void;
}

export class Scheduler {
  readonly parallel: number;
  #context: Context;
  #eos: number;
  #waiting: Job[] = [];
  #exclusive: Exclusive[] = [];
  #interludes: Exclusive[] = [];
  #active = new Map<number, Active>();
  #running = false;
  #disposed = false;
  #idle: Promise<void> = Promise.resolve();
  /** which adapter group steps next when several are active (libllama applies one set per decode) */
  #turn = 0;

  /** `context` must have been created with `parallel` sequences. */
  constructor(context: Context, parallel: number, eos: number) {
    this.#context = context;
    this.parallel = parallel;
    this.#eos = eos;
  }

  generate(request: SequenceRequest): Promise<SequenceResult> {
    return this.#enqueue({ kind: "generate", request });
  }

  /** Teacher-forced log-probabilities of `suffix` after the prefix, into a new array. */
  score(prefix: SequencePrefix, suffix: Int32Array): Promise<Float32Array> {
    return this.#enqueue({ kind: "score", request: prefix, suffix, out: new Float32Array(suffix.length) });
  }

  /** The logits of the first answer token after the prefix, into `out` (vocabulary size). */
  logits(prefix: SequencePrefix, out: Float32Array): Promise<Float32Array> {
    return this.#enqueue({ kind: "logits", request: prefix, out });
  }

  /** Runs `work` alone on the context once every sequence is released (new requests wait behind it). */
  exclusive<T>(signal: AbortSignal | undefined, work: (context: Context) => Promise<T>): Promise<T> {
    if (this.#disposed) return Promise.reject(new DisposedError("This model"));
    return new Promise<T>((resolve, reject) => {
      this.#exclusive.push({ work, signal, resolve: resolve as (v: never) => void, reject });
      this.#wake();
    });
  }

  /**
   * Runs `work` (other native work on the same cores, such as an image encode) between two decode steps, so
   * that it never competes with a step for the CPU; the active requests wait meanwhile.
   */
  between<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    if (this.#disposed) return Promise.reject(new DisposedError("This model"));
    return new Promise<T>((resolve, reject) => {
      this.#interludes.push({ work, signal, resolve: resolve as (v: never) => void, reject });
      this.#wake();
    });
  }

  /** Fails waiting and active requests with ERR_DISPOSED; resolves when the loop has stopped. Idempotent. */
  dispose(): Promise<void> {
    if (!this.#disposed) {
      this.#disposed = true;
      this.#context.dispose();
    }
    return this.#idle;
  }

  #enqueue<T>(job: Omit<Job, "resolve" | "reject">): Promise<T> {
    if (this.#disposed) return Promise.reject(new DisposedError("This model"));
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ ...job, resolve: resolve as (v: never) => void, reject });
      this.#wake();
    });
  }

  #wake(): void {
    if (this.#running) return;
    this.#running = true;
    this.#idle = this.#loop();
  }

  async #loop(): Promise<void> {
    try {
      // Yield once so that requests made in the same tick join the first step.
      await Promise.resolve();
      await this.#serve();
    } catch (error) {
      this.#running = false;
      this.#failAll(error instanceof PaliError ? error : fromNativeError(error, "The scheduler failed"));
    }
  }

  async #serve(): Promise<void> {
    // #running is cleared in the same turn as the last check for work, so a request queued after it starts a new loop.
    while (true) {
      if (this.#disposed) {
        this.#running = false;
        this.#failAll(new DisposedError("This model"));
        return;
      }
      this.#dropAborted();
      const exclusive = this.#exclusive[0];
      if (exclusive && this.#active.size === 0) {
        this.#exclusive.shift();
        await this.#runExclusive(exclusive);
        continue;
      }
      const interlude = this.#interludes.shift();
      if (interlude) {
        try {
          interlude.resolve((await interlude.work(this.#context)) as never);
        } catch (error) {
          interlude.reject(error);
        }
        continue;
      }
      let prefilled = false;
      if (!exclusive && this.#waiting.length > 0 && this.#active.size < this.parallel) {
        await this.#start(this.#waiting.shift() as Job);
        prefilled = true;
      }
      if (this.#active.size > 0) {
        await this.#step();
        continue;
      }
      if (!prefilled && this.#waiting.length === 0 && this.#exclusive.length === 0 && this.#interludes.length === 0) {
        this.#running = false;
        return;
      }
    }
  }

  #freeSeq(): number {
    for (let s = 0; s < this.parallel; s++) if (!this.#active.has(s)) return s;
    throw new Error("no free sequence");
  }

  async #start(job: Job): Promise<void> {
    const seq = this.#freeSeq();
    const r = job.request;
    const t0 = performance.now();
    try {
      this.#context.setAdapters(r.adapters ?? []);
      if (job.kind === "generate") {
        const request = r as SequenceRequest;
        const first = await this.#context.run(r.signal, () =>
          this.#context.seqPrefill(seq, r.imageEmbeddings, r.imageTokens, r.textIds, request.params),
        );
        const active: Active = {
          job,
          request,
          seq,
          group: adapterKey(r.adapters ?? []),
          tokens: [],
          logprobs: [],
          prefillMs: performance.now() - t0,
          decodeStart: performance.now(),
        };
        this.#active.set(seq, active);
        if (first) this.#accept(active, first.token, first.logprob);
        return;
      }
      const out = job.out as Float32Array;
      await this.#context.run(r.signal, async () => {
        if (job.kind === "logits") {
          await this.#context.seqPrefill(seq, r.imageEmbeddings, r.imageTokens, r.textIds, null, out);
        } else {
          await this.#context.seqPrefill(seq, r.imageEmbeddings, r.imageTokens, r.textIds, null);
          await this.#context.seqScore(seq, job.suffix as Int32Array, out);
        }
      });
      this.#release(seq);
      if (this.#disposed || r.signal?.aborted) job.reject(this.#failure(undefined, r.signal));
      else job.resolve(out as never);
    } catch (error) {
      this.#release(seq);
      this.#active.delete(seq);
      job.reject(this.#failure(error, r.signal));
    }
  }

  async #step(): Promise<void> {
    let batch = [...this.#active.values()];
    const groups = [...new Set(batch.map((a) => a.group))];
    if (groups.length > 1) {
      // Requests under different adapters take turns, one set per step.
      const group = groups[this.#turn++ % groups.length];
      batch = batch.filter((a) => a.group === group);
    }
    const n = batch.length;
    try {
      this.#context.setAdapters((batch[0] as Active).request.adapters ?? []);
    } catch (error) {
      for (const a of batch) this.#finish(a, undefined, error);
      return;
    }
    const seqs = Int32Array.from(batch, (a) => a.seq);
    const tokens = Int32Array.from(batch, (a) => a.tokens[a.tokens.length - 1] as number);
    const outTokens = new Int32Array(n);
    const outLogprobs = new Float32Array(n);
    try {
      await this.#context.run(undefined, () => this.#context.seqStep(seqs, tokens, outTokens, outLogprobs));
    } catch (error) {
      for (const a of batch) this.#finish(a, undefined, error);
      return;
    }
    for (let i = 0; i < n; i++) {
      const a = batch[i] as Active;
      if (this.#active.get(a.seq) === a) this.#accept(a, outTokens[i] as number, outLogprobs[i] as number);
    }
  }

  /** Records a sampled token and ends the request when it is done. */
  #accept(a: Active, token: number, logprob: number): void {
    if (a.request.signal?.aborted) {
      this.#finish(a, "aborted");
      return;
    }
    a.tokens.push(token);
    a.logprobs.push(logprob);
    let keepGoing: boolean | undefined = true;
    try {
      keepGoing = a.request.onToken?.(token, logprob);
    } catch (error) {
      this.#finish(a, undefined, error);
      return;
    }
    if (keepGoing === false) this.#finish(a, "stop");
    else if (token === this.#eos) this.#finish(a, "eos");
    else if (a.tokens.length >= a.request.params.maxTokens) this.#finish(a, "length");
  }

  #finish(a: Active, reason: FinishReason | undefined, error?: unknown): void {
    this.#active.delete(a.seq);
    this.#release(a.seq);
    const signal = a.request.signal;
    if (reason === undefined) {
      a.job.reject(this.#failure(error, signal));
    } else if (reason === "aborted") {
      a.job.reject(new AbortError("The request was aborted", { cause: signal?.reason }));
    } else {
      a.job.resolve({
        tokens: Int32Array.from(a.tokens),
        logprobs: Float32Array.from(a.logprobs),
        finishReason: reason,
        prefillMs: a.prefillMs,
        decodeMs: performance.now() - a.decodeStart,
      } satisfies SequenceResult as never);
    }
  }

  #dropAborted(): void {
    for (const a of [...this.#active.values()]) if (a.request.signal?.aborted) this.#finish(a, "aborted");
    this.#waiting = this.#waiting.filter((job) => {
      if (!job.request.signal?.aborted) return true;
      job.reject(new AbortError("The request was aborted", { cause: job.request.signal.reason }));
      return false;
    });
    const keep = (x: Exclusive) => {
      if (!x.signal?.aborted) return true;
      x.reject(new AbortError("The request was aborted", { cause: x.signal.reason }));
      return false;
    };
    this.#exclusive = this.#exclusive.filter(keep);
    this.#interludes = this.#interludes.filter(keep);
  }

  async #runExclusive(x: Exclusive): Promise<void> {
    try {
      const value = await this.#context.run(x.signal, () => x.work(this.#context));
      if (this.#disposed || x.signal?.aborted) x.reject(this.#failure(undefined, x.signal));
      else x.resolve(value as never);
    } catch (error) {
      x.reject(this.#failure(error, x.signal));
    }
  }

  /** What a request fails with: ERR_DISPOSED after dispose(), ERR_ABORTED after its signal, else a PaliError. */
  #failure(error: unknown, signal: AbortSignal | undefined): unknown {
    if (this.#disposed) return new DisposedError("This model");
    if (signal?.aborted) return new AbortError("The request was aborted", { cause: signal.reason });
    return error instanceof PaliError ? error : fromNativeError(error, "The request failed");
  }

  #release(seq: number): void {
    if (!this.#context.disposed) this.#context.seqRelease(seq);
  }

  #failAll(error: PaliError): void {
    for (const a of [...this.#active.values()]) {
      this.#active.delete(a.seq);
      a.job.reject(error);
    }
    for (const job of this.#waiting.splice(0)) job.reject(error);
    for (const x of this.#exclusive.splice(0)) x.reject(error);
    for (const x of this.#interludes.splice(0)) x.reject(error);
  }
}
