/**
 * What keeps one server healthy under load: a bounded number of admitted requests (the model's parallel
 * slots plus a waiting line, the rest refused with 429 at once), a deadline per request, and an abort
 * when the client goes away, all wired into the AbortSignal that the SDK call gets.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { ServerError, ServerErrorCode } from "./errors.js";

export interface RequestState {
  started: number;
  /** aborted on timeout (reason: a 504 ServerError) or when the client disconnects (a 499 one) */
  controller: AbortController;
  /** tokens generated, for the log line */
  completionTokens: number | undefined;
  /** the error code the response carries (also for an error sent inside a stream) */
  errorCode: string | undefined;
  /** the multipart file, when the image came as an upload */
  upload: { filename: string; bytes: Buffer } | undefined;
}

const states = new WeakMap<FastifyRequest, RequestState>();

/** Called once per request (onRequest): from here on, a client that hangs up aborts the request's work. */
export function trackRequest(request: FastifyRequest, reply: FastifyReply): RequestState {
  const state: RequestState = {
    started: performance.now(),
    controller: new AbortController(),
    completionTokens: undefined,
    errorCode: undefined,
    upload: undefined,
  };
  states.set(request, state);
  // The response's 'close' comes after 'finish' when it was delivered; before it, the client left.
  // (The request's own 'close' only means its body was read.)
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished)
      state.controller.abort(new ServerError(499, "ERR_ABORTED", "The client closed the connection"));
  });
  return state;
}

export function stateOf(request: FastifyRequest): RequestState {
  const state = states.get(request);
  if (!state) throw new Error("request state missing: trackRequest runs in onRequest");
  return state;
}

/** An SDK abort caused by the deadline or a disconnect becomes that cause (504, 499). */
export function explainAbort(error: unknown, signal: AbortSignal): unknown {
  return signal.aborted && signal.reason instanceof ServerError ? signal.reason : error;
}

export interface Ticket {
  signal: AbortSignal;
  /** idempotent; also done when the response closes */
  leave(): void;
}

/** A count of things in progress, and a wait for none. */
export class Counter {
  #value = 0;
  #idle: (() => void)[] = [];

  get value(): number {
    return this.#value;
  }

  up(): void {
    this.#value++;
  }

  down(): void {
    this.#value--;
    if (this.#value === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Resolves when the count is zero. */
  idle(): Promise<void> {
    if (this.#value === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}

export class Admission {
  readonly maxQueue: number;
  readonly timeoutMs: number;
  #active = new Counter();
  #meanMs = 1000;

  constructor(maxQueue: number, timeoutMs: number) {
    this.maxQueue = maxQueue;
    this.timeoutMs = timeoutMs;
  }

  /** requests admitted and not finished */
  get active(): number {
    return this.#active.value;
  }

  /** Admits the request (or throws 429 with Retry-After) and starts its deadline. */
  enter(request: FastifyRequest, reply: FastifyReply, parallel: number): Ticket {
    if (this.active >= parallel + this.maxQueue) {
      throw new ServerError(
        429,
        ServerErrorCode.QueueFull,
        `The server is busy (${parallel} running, ${this.maxQueue} waiting); retry after a moment`,
        { headers: { "retry-after": String(this.#retryAfter(parallel)) } },
      );
    }
    const state = stateOf(request);
    // A client that left before its turn came takes no place (its 'close' has passed: nothing would free it).
    if (state.controller.signal.aborted) throw state.controller.signal.reason;
    this.#active.up();
    const entered = performance.now();
    const timer = setTimeout(
      () =>
        state.controller.abort(
          new ServerError(504, ServerErrorCode.Timeout, `The request took longer than ${this.timeoutMs} ms and was stopped`),
        ),
      this.timeoutMs,
    );
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      clearTimeout(timer);
      this.#active.down();
      // A slow moving average of request time, for Retry-After.
      this.#meanMs = 0.9 * this.#meanMs + 0.1 * (performance.now() - entered);
    };
    reply.raw.once("close", leave);
    return { signal: state.controller.signal, leave };
  }

  /** Resolves when no admitted request is left. */
  idle(): Promise<void> {
    return this.#active.idle();
  }

  /** Seconds until a place is likely free: the line ahead, served `parallel` at a time. */
  #retryAfter(parallel: number): number {
    const ahead = this.active - parallel + 1;
    return Math.max(1, Math.min(60, Math.ceil((this.#meanMs * ahead) / parallel / 1000)));
  }
}
