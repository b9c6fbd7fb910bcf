/** An answer as its tokens arrive: UTF-8-safe text pieces, cut at the first stop string. */
import type { StreamDecoder, Tokenizer } from "@pali/tokenizer";

export interface AnswerChunk {
  /** the text this token completes (UTF-8 safe: bytes of an unfinished character wait) */
  text: string;
  token: number;
  logprob: number;
}

export class AnswerStream {
  text = "";
  /** tokens taken (the one that completed a stop string included) */
  count = 0;
  stopped = false;
  #decoder: StreamDecoder;
  #stop: readonly string[];
  #onChunk: (chunk: AnswerChunk) => void;

  constructor(tokenizer: Tokenizer, stop: readonly string[], onChunk: (chunk: AnswerChunk) => void) {
    this.#decoder = tokenizer.createStreamDecoder();
    this.#stop = stop;
    this.#onChunk = onChunk;
  }

  /** Takes the next token; false once a stop string has ended the answer (later tokens are ignored). */
  push(token: number, logprob: number): boolean {
    if (this.stopped) return false;
    this.count++;
    let piece = this.#decoder.push(token);
    this.text += piece;
    const hit = this.#stop.map((s) => this.text.indexOf(s)).filter((i) => i >= 0);
    if (hit.length > 0) {
      // Cut at the earliest stop string and end generation there.
      const cut = Math.min(...hit);
      piece = piece.slice(0, Math.max(0, piece.length - (this.text.length - cut)));
      this.text = this.text.slice(0, cut);
      this.stopped = true;
    }
    this.#onChunk({ text: piece, token, logprob });
    return !this.stopped;
  }

  /** The rest of an unfinished character, once generation has ended without a stop string. */
  finish(): void {
    if (!this.stopped) this.text += this.#decoder.flush();
  }
}
