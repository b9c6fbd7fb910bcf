/** libllama's quantizer, run off the JS thread. */
import { expectInteger, expectNonEmptyString, expectOneOf, InvalidArgumentError, optional } from "@pali/base";
import { fromNativeError } from "./errors.js";
import { loadNative } from "./native.js";

export const textModelQuantTypes = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"] as const;
export type TextModelQuantType = (typeof textModelQuantTypes)[number];

/**
 * Quantizes a libllama-loadable text-model GGUF with llama.cpp's choices of which tensors keep more
 * precision. The output appears under its final name only once complete.
 */
export async function quantizeTextModel(
  input: string,
  output: string,
  options: { type: TextModelQuantType; threads?: number },
): Promise<void> {
  expectNonEmptyString(input, "input");
  expectNonEmptyString(output, "output");
  const type = expectOneOf(options.type, "type", textModelQuantTypes);
  const threads = optional(options.threads, 0, (v) => expectInteger(v, "threads", 0, 1024));
  try {
    await loadNative().quantize(input, output, type, threads);
  } catch (error) {
    throw fromNativeError(error, `Could not quantize ${input}`);
  }
}

/** Bytes one row of `nPerRow` values takes in a ggml type ("f16", "q8_0", "q4_K", ...). */
export function ggmlRowSize(type: string, nPerRow: number): number {
  expectNonEmptyString(type, "type");
  expectInteger(nPerRow, "nPerRow", 1);
  try {
    return loadNative().rowSize(type, nPerRow);
  } catch (error) {
    throw fromNativeError(error, `Cannot store rows of ${nPerRow} values as ${type}`);
  }
}

/**
 * Converts rows of float32 values to a ggml type with ggml's converters and quantizers, off the JS
 * thread. `src` holds `src.length / nPerRow` rows.
 */
export async function convertRows(
  type: string,
  src: Float32Array,
  nPerRow: number,
  options: { threads?: number } = {},
): Promise<Uint8Array> {
  const rowBytes = ggmlRowSize(type, nPerRow);
  if (src.length % nPerRow !== 0) {
    throw new InvalidArgumentError(`Expected a whole number of rows of ${nPerRow} values but received ${src.length} values`);
  }
  const threads = optional(options.threads, 0, (v) => expectInteger(v, "threads", 0, 1024));
  const rows = src.length / nPerRow;
  const dst = new Uint8Array(rows * rowBytes);
  try {
    await loadNative().convertRows(type, src, rows, nPerRow, dst, threads);
  } catch (error) {
    throw fromNativeError(error, `Could not convert to ${type}`);
  }
  return dst;
}
