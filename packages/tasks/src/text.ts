/**
 * Decoding the plain-text tasks (caption, describe, OCR, VQA answers, question generation): the answer is
 * the generated text itself. Only what the runtime may leave around it is removed.
 */

import type { DecoderInput } from "./tokens.js";
import { OutputText } from "./tokens.js";

/** Control-token text a detokenizer that keeps special tokens may leave at the end (SPEC §3, §5). */
const TRAILING_CONTROL = ["<eos>", "<pad>", "<end_of_turn>"];

/**
 * The answer text of a caption/OCR/VQA/question output: trailing `<eos>`, `<pad>` and `<end_of_turn>` text
 * removed, then trimmed. Accepts the text or the generated tokens.
 */
export function parseText(output: DecoderInput): string {
  let text = OutputText.from(output).text.trim();
  for (let found = true; found; ) {
    found = false;
    for (const token of TRAILING_CONTROL) {
      if (text.endsWith(token)) {
        text = text.slice(0, -token.length).trimEnd();
        found = true;
      }
    }
  }
  return text;
}
