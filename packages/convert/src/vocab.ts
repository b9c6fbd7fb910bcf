/**
 * The GGUF tokenizer of a PaliGemma checkpoint: the SentencePiece pieces of tokenizer.model, the tokens
 * transformers adds after them (`<image>`), and filler up to the embedding's row count, which libllama
 * requires to equal the token count.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ModelFormatError } from "@pali/core";
import type { GGUFValue } from "@pali/gguf";
import { parseSentencePieceModel } from "@pali/tokenizer";

/** llama.cpp's token types (the same numbers as SentencePiece's piece types). */
const TokenType = { control: 3, userDefined: 4 } as const;

export interface Vocabulary {
  tokens: string[];
  scores: Float32Array;
  types: Int32Array;
  bosId: number;
  eosId: number;
  unkId: number;
  padId: number;
  locStart: number;
  segStart: number;
}

export const LOC_COUNT = 1024;
export const SEG_COUNT = 128;

async function readJson(path: string): Promise<unknown | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ModelFormatError(`Could not read ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** Tokens transformers appends after the SentencePiece vocabulary, by id. */
async function addedTokens(dir: string): Promise<Map<number, { content: string; special: boolean }>> {
  const added = new Map<number, { content: string; special: boolean }>();
  const tokenizerJson = (await readJson(join(dir, "tokenizer.json"))) as
    | { added_tokens?: { id: number; content: string; special?: boolean }[] }
    | undefined;
  for (const t of tokenizerJson?.added_tokens ?? []) added.set(t.id, { content: t.content, special: t.special ?? false });
  const config = (await readJson(join(dir, "tokenizer_config.json"))) as
    | { added_tokens_decoder?: Record<string, { content: string; special?: boolean }> }
    | undefined;
  for (const [id, t] of Object.entries(config?.added_tokens_decoder ?? {})) {
    if (!added.has(Number(id))) added.set(Number(id), { content: t.content, special: t.special ?? false });
  }
  const addedJson = (await readJson(join(dir, "added_tokens.json"))) as Record<string, number> | undefined;
  for (const [content, id] of Object.entries(addedJson ?? {})) if (!added.has(id)) added.set(id, { content, special: true });
  return added;
}

function findRun(tokens: string[], first: string, count: number, name: (i: number) => string): number {
  const start = tokens.indexOf(first);
  if (start < 0) throw new ModelFormatError(`The tokenizer has no ${first} token; PaliGemma's tokenizer has ${count} of them`);
  for (let i = 0; i < count; i++) {
    if (tokens[start + i] !== name(i))
      throw new ModelFormatError(`The tokenizer's ${first}.. tokens are not contiguous at ${name(i)}`);
  }
  return start;
}

export async function readVocabulary(dir: string, vocabSize: number, imageTokenId: number): Promise<Vocabulary> {
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, "tokenizer.model"));
  } catch (cause) {
    throw new ModelFormatError(
      `${dir} has no readable tokenizer.model. pali converts the SentencePiece model that PaliGemma checkpoints ship; copy it into the checkpoint folder.`,
      { cause },
    );
  }
  const model = parseSentencePieceModel(bytes);
  const tokens = model.pieces.map((p) => p.piece);
  const scores = model.pieces.map((p) => p.score);
  const types = model.pieces.map((p) => p.type as number);
  if (tokens.length > vocabSize) {
    throw new ModelFormatError(`tokenizer.model has ${tokens.length} pieces but the embedding has only ${vocabSize} rows`);
  }
  const added = await addedTokens(dir);
  for (let id = tokens.length; id < vocabSize; id++) {
    const a = added.get(id);
    // Rows past the tokenizer are padding transformers added to reach a multiple of 64: control tokens,
    // so that no text ever encodes to them.
    tokens.push(a?.content ?? `[PAD${id}]`);
    scores.push(0);
    types.push(a === undefined || a.special ? TokenType.control : TokenType.userDefined);
  }
  if (tokens[imageTokenId] !== "<image>") {
    throw new ModelFormatError(
      `Token ${imageTokenId} (config.json image_token_index) is ${JSON.stringify(tokens[imageTokenId])}, not <image>`,
    );
  }
  const locStart = findRun(tokens, "<loc0000>", LOC_COUNT, (i) => `<loc${String(i).padStart(4, "0")}>`);
  const segStart = findRun(tokens, "<seg000>", SEG_COUNT, (i) => `<seg${String(i).padStart(3, "0")}>`);
  return {
    tokens,
    scores: Float32Array.from(scores),
    types: Int32Array.from(types),
    bosId: model.bosId,
    eosId: model.eosId,
    unkId: model.unkId,
    padId: model.padId,
    locStart,
    segStart,
  };
}

export function vocabularyMetadata(v: Vocabulary): [string, GGUFValue][] {
  return [
    ["tokenizer.ggml.model", { type: "str", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "arr", itemType: "str", value: v.tokens }],
    ["tokenizer.ggml.scores", { type: "arr", itemType: "f32", value: v.scores }],
    ["tokenizer.ggml.token_type", { type: "arr", itemType: "i32", value: v.types }],
    ["tokenizer.ggml.bos_token_id", { type: "u32", value: v.bosId }],
    ["tokenizer.ggml.eos_token_id", { type: "u32", value: v.eosId }],
    ["tokenizer.ggml.unknown_token_id", { type: "u32", value: v.unkId }],
    ["tokenizer.ggml.padding_token_id", { type: "u32", value: v.padId }],
    // PaliGemma places <bos> itself (after the image tokens) and has no dummy prefix.
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: false }],
    ["tokenizer.ggml.add_eos_token", { type: "bool", value: false }],
    ["tokenizer.ggml.add_space_prefix", { type: "bool", value: false }],
  ];
}
