/**
 * The decoder's tokenizer.* keys as libllama's SentencePiece ("llama") vocabulary loader reads them
 * (llama-vocab.cpp llama_vocab::impl::load): it asserts that the token strings are unique, renames empty
 * ones (which can then collide), and parses byte tokens as <0xXX>.
 */

import type { GGUFFile } from "@pali/base";
import { keyError, optionalBool, optionalString, optionalU32, requireString, UnsupportedModelError } from "@pali/base";

/** libllama's llama_token_type: UNDEFINED 0, NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6. */
const TOKEN_TYPE_BYTE = 6;
const MAX_VOCAB = 1 << 22;
const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;

const specialIdKeys = [
  "bos_token_id",
  "eos_token_id",
  "unknown_token_id",
  "padding_token_id",
  "seperator_token_id",
  "cls_token_id",
  "mask_token_id",
  "eot_token_id",
  "eom_token_id",
].map((k) => `tokenizer.ggml.${k}`);
const flagKeys = ["add_bos_token", "add_eos_token", "add_sep_token", "add_space_prefix", "remove_extra_whitespaces"].map(
  (k) => `tokenizer.ggml.${k}`,
);

/** Checks the vocabulary; returns the tokenizer keys it checked (any other tokenizer.* key is refused). */
export function checkVocabulary(file: GGUFFile): string[] {
  const model = requireString(file, "tokenizer.ggml.model");
  if (model !== "llama") {
    throw new UnsupportedModelError(
      `${file.path} has a ${JSON.stringify(model)} tokenizer; PaliGemma's is SentencePiece ("llama"). Convert the checkpoint with pali convert`,
    );
  }
  const pre = optionalString(file, "tokenizer.ggml.pre");
  if (pre !== undefined && pre !== "default")
    throw keyError(file, "tokenizer.ggml.pre", `is ${JSON.stringify(pre)}, expected "default"`);
  optionalString(file, "tokenizer.chat_template");

  const tokensValue = file.metadata.get("tokenizer.ggml.tokens");
  if (tokensValue === undefined) throw keyError(file, "tokenizer.ggml.tokens", "is missing");
  if (tokensValue.type !== "arr" || tokensValue.itemType !== "str")
    throw keyError(file, "tokenizer.ggml.tokens", "should be an array of strings");
  const tokens = tokensValue.value;
  const n = tokens.length;
  if (n < 1 || n > MAX_VOCAB) throw keyError(file, "tokenizer.ggml.tokens", `has ${n} tokens, expected 1 to ${MAX_VOCAB}`);

  const scores = file.metadata.get("tokenizer.ggml.scores");
  if (scores !== undefined) {
    if (scores.type !== "arr" || scores.itemType !== "f32")
      throw keyError(file, "tokenizer.ggml.scores", "should be an array of f32");
    if (scores.value.length !== n)
      throw keyError(file, "tokenizer.ggml.scores", `has ${scores.value.length} items for ${n} tokens`);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(scores.value[i])) throw keyError(file, "tokenizer.ggml.scores", `item ${i} is ${scores.value[i]}`);
    }
  }
  const typesValue = file.metadata.get("tokenizer.ggml.token_type");
  let types: Int32Array | undefined;
  if (typesValue !== undefined) {
    if (typesValue.type !== "arr" || typesValue.itemType !== "i32")
      throw keyError(file, "tokenizer.ggml.token_type", "should be an array of i32");
    if (typesValue.value.length !== n)
      throw keyError(file, "tokenizer.ggml.token_type", `has ${typesValue.value.length} items for ${n} tokens`);
    types = typesValue.value;
  }

  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const token = tokens[i] as string;
    if (token.length === 0) throw keyError(file, "tokenizer.ggml.tokens", `item ${i} is empty`);
    // libllama reads each token as a C string: a NUL would cut it short (and two cut tokens may then collide).
    if (token.includes("\0")) throw keyError(file, "tokenizer.ggml.tokens", `item ${i} contains a NUL byte`);
    const before = seen.get(token);
    if (before !== undefined) {
      throw keyError(
        file,
        "tokenizer.ggml.tokens",
        `item ${i} ${JSON.stringify(token)} repeats item ${before}; every token must be unique`,
      );
    }
    seen.set(token, i);
    if (types !== undefined) {
      const type = types[i] as number;
      if (type < 1 || type > TOKEN_TYPE_BYTE)
        throw keyError(file, "tokenizer.ggml.token_type", `item ${i} is ${type}, expected 1 to 6`);
      if (type === TOKEN_TYPE_BYTE && !BYTE_TOKEN.test(token)) {
        throw keyError(
          file,
          "tokenizer.ggml.token_type",
          `item ${i} marks ${JSON.stringify(token)} as a byte token, which must read <0xXX>`,
        );
      }
    }
  }
  for (const key of specialIdKeys) optionalU32(file, key, { max: n - 1 });
  for (const key of flagKeys) optionalBool(file, key);
  return [
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.chat_template",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.token_type",
    ...specialIdKeys,
    ...flagKeys,
  ];
}
