/**
 * The decoders read either the generated text or the generated tokens. Tokens carry the decoded text of each
 * token (what a streaming detokenizer returns for it, possibly "" while a UTF-8 character is incomplete) and
 * optionally its probability; their concatenation is the text. Parsing always runs on the text; a character
 * span is then mapped back to the tokens that produced it, so loc tokens and label spans get exact token
 * indices and a confidence.
 */
import { expectFiniteNumber, expectInteger, expectObject, expectString, InvalidArgumentError, invalid } from "@pali/base";

export interface OutputToken {
  /** token id (not interpreted by the decoders; kept for the caller) */
  id: number;
  /** the decoded text of this token; "" for a byte that only completes a character in a later token */
  text: string;
  /** the probability the model gave this token, in [0, 1] */
  prob?: number;
}

/** What the decoders accept: the generated text, or the generated tokens with their decoded text. */
export type DecoderInput = string | readonly OutputToken[];

/** A half-open [start, end) range. */
export type Range = readonly [start: number, end: number];

/** The generated output as text, with the token boundaries when it came as tokens. */
export class OutputText {
  readonly text: string;
  /** `starts[i]` is the offset of token i in `text`; `starts[n]` is text.length. Empty for string input. */
  private readonly starts: Int32Array;
  private readonly probs: Float64Array | null;
  readonly tokenCount: number;

  private constructor(text: string, starts: Int32Array, probs: Float64Array | null, tokenCount: number) {
    this.text = text;
    this.starts = starts;
    this.probs = probs;
    this.tokenCount = tokenCount;
  }

  static from(input: unknown, name = "output"): OutputText {
    if (typeof input === "string") return new OutputText(input, new Int32Array(0), null, 0);
    if (!Array.isArray(input)) throw invalid("string or array of tokens", name, input);
    const n = input.length;
    const starts = new Int32Array(n + 1);
    const probs = new Float64Array(n);
    let allProbs = n > 0;
    let text = "";
    for (let i = 0; i < n; i++) {
      const where = `${name}[${i}]`;
      const token = expectObject(input[i], where);
      expectInteger(token.id, `${where}.id`, 0);
      text += expectString(token.text, `${where}.text`);
      starts[i + 1] = text.length;
      if (token.prob === undefined) allProbs = false;
      else probs[i] = expectProbability(token.prob, `${where}.prob`);
    }
    return new OutputText(text, starts, allProbs ? probs : null, n);
  }

  get hasTokens(): boolean {
    return this.tokenCount > 0;
  }

  /**
   * The tokens that produced text[start, end): from the first token whose text reaches past `start` to the
   * last non-empty token that begins before `end`. Empty tokens inside the span (bytes of a character that a
   * later token completes) are included; empty tokens before it belong to what precedes it.
   */
  tokenRange(start: number, end: number): [number, number] | undefined {
    if (this.tokenCount === 0 || end <= start) return undefined;
    const first = this.firstTokenEndingAfter(start);
    const last = this.firstTokenEndingAfter(end - 1);
    return [first, last + 1];
  }

  /** Mean probability over a token range, or undefined when the tokens carry no probabilities. */
  meanProbability(range: Range | undefined): number | undefined {
    if (this.probs === null || range === undefined) return undefined;
    return meanOver(this.probs, range);
  }

  /** Smallest i with starts[i + 1] > offset, i.e. the token containing character `offset`. */
  private firstTokenEndingAfter(offset: number): number {
    let lo = 0;
    let hi = this.tokenCount - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.starts[mid + 1] as number) > offset) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

function expectProbability(value: unknown, name: string): number {
  const p = expectFiniteNumber(value, name);
  if (p < 0 || p > 1) throw invalid("probability between 0 and 1", name, value);
  return p;
}

function meanOver(probs: ArrayLike<number>, range: Range): number {
  let sum = 0;
  for (let i = range[0]; i < range[1]; i++) sum += probs[i] as number;
  return sum / (range[1] - range[0]);
}

/**
 * The confidence of one decoded box: the mean probability of its tokens (4 loc tokens, the 16 seg tokens of a
 * segmentation, and the label tokens), as `tokenRange` of a Detection or Segmentation gives them.
 * `probabilities` is either one probability per output token or the output tokens themselves.
 */
export function boxConfidence(probabilities: ArrayLike<number> | readonly OutputToken[], tokenRange: Range): number {
  if (probabilities === null || typeof probabilities !== "object" || typeof probabilities.length !== "number") {
    throw invalid("array of probabilities or tokens", "probabilities", probabilities);
  }
  const n = probabilities.length;
  if (!Array.isArray(tokenRange) || tokenRange.length !== 2) throw invalid("[start, end) pair", "tokenRange", tokenRange);
  const start = expectInteger(tokenRange[0], "tokenRange[0]", 0, n);
  const end = expectInteger(tokenRange[1], "tokenRange[1]", 0, n);
  if (end <= start) {
    throw new InvalidArgumentError(
      `Expected a non-empty token range but received [${start}, ${end}): pass the tokenRange of a decoded box`,
    );
  }
  const values = new Float64Array(end - start);
  for (let i = start; i < end; i++) {
    const item: unknown = probabilities[i];
    const p = typeof item === "object" && item !== null ? (item as { prob?: unknown }).prob : item;
    if (p === undefined) {
      throw new InvalidArgumentError(`Token ${i} has no probability: ask the generator for token probabilities`);
    }
    values[i - start] = expectProbability(p, `probabilities[${i}]`);
  }
  return meanOver(values, [0, values.length]);
}
