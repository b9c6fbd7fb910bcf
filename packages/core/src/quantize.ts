/** libllama's quantizer, run off the JS thread. */
import { fromNativeError } from "./errors.js";
import { loadNative } from "./native.js";
import { expectInteger, expectNonEmptyString, expectOneOf, optional } from "./validate.js";

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
