/**
 * PaliGemma's prompt layout (SPEC §2.1), in one place:
 *   prefix = [<image> × N] <bos> prompt "\n"      suffix = answer <eos>
 * The prompt and its "\n" are tokenized together, as Hugging Face's processor does (SPEC §9.11); a
 * prompt that already ends in "\n" may therefore produce "\n\n" as one piece. Add no newline yourself.
 */
import {
  expectBoolean,
  expectInteger,
  expectObject,
  expectPositiveInteger,
  expectString,
  invalid,
  UnsupportedModelError,
} from "@pali/base";
import { Tokenizer } from "./tokenizer.js";

export interface PrefixOptions {
  prompt: string;
  /** image placeholder tokens before <bos>: 256 / 1024 / 4096 for 224 / 448 / 896 px */
  imageTokenCount: number;
  /** the id of <image> (257152 in the real checkpoints) */
  imageTokenId: number;
  /**
   * Match control tokens and <image> written in the prompt as single tokens, as Hugging Face does.
   * Default false: the prompt is plain text (a user's "<eos>" cannot end the prefix early).
   * <locNNNN> and <segNNN> are matched whole either way.
   */
  parseSpecial?: boolean;
}

function checkTokenizer(tokenizer: unknown): Tokenizer {
  if (!(tokenizer instanceof Tokenizer)) throw invalid("Tokenizer", "tokenizer", tokenizer);
  return tokenizer;
}

/** `[imageTokenId × imageTokenCount, bosId, ...encode(prompt + "\n")]`. */
export function buildPrefixIds(tokenizer: Tokenizer, options: PrefixOptions): number[] {
  const tok = checkTokenizer(tokenizer);
  const o = expectObject(options, "options");
  const prompt = expectString(o.prompt, "prompt");
  const count = expectPositiveInteger(o.imageTokenCount, "imageTokenCount");
  const imageTokenId = expectInteger(o.imageTokenId, "imageTokenId", 0, tok.vocabSize - 1);
  const parseSpecial = o.parseSpecial === undefined ? false : expectBoolean(o.parseSpecial, "parseSpecial");
  if (tok.bosId < 0) throw new UnsupportedModelError("The tokenizer has no <bos> token, which the PaliGemma prompt layout needs");
  const text = tok.encode(`${prompt}\n`, { parseSpecial });
  const ids = new Array<number>(count + 1 + text.length);
  ids.fill(imageTokenId, 0, count);
  ids[count] = tok.bosId;
  for (let i = 0; i < text.length; i++) ids[count + 1 + i] = text[i] as number;
  return ids;
}

/** `[...encode(suffix), eosId]`: the target of a training example or a scored answer. */
export function buildSuffixIds(tokenizer: Tokenizer, suffix: string): number[] {
  const tok = checkTokenizer(tokenizer);
  const text = expectString(suffix, "suffix");
  if (tok.eosId < 0) throw new UnsupportedModelError("The tokenizer has no <eos> token, which the PaliGemma suffix layout needs");
  const ids = tok.encode(text);
  ids.push(tok.eosId);
  return ids;
}
