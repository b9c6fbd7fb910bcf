/**
 * Reading a vocabulary into the one shape the Tokenizer is built from: from a SentencePiece model (plus
 * Hugging Face's added tokens) or from a GGUF file's tokenizer.ggml.* metadata.
 */
import { expectInteger, expectObject, InvalidArgumentError, ModelFormatError, UnsupportedModelError } from "@pali/base";
import type { GGUFFile, GGUFValue } from "@pali/gguf";
import { isPieceType, PieceType, parseSentencePieceModel, validatePieces } from "./sentencepiece-model.js";

export interface TokenizerSpec {
  pieces: string[];
  scores: Float32Array;
  types: Uint8Array;
  /** pieces that come from the model; ids from here on are added tokens (special, outside BPE) */
  baseSize: number;
  byteFallback: boolean;
  addDummyPrefix: boolean;
  /** strip leading and trailing spaces, collapse runs of spaces (sentencepiece's default; Gemma turns it off) */
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
}

export function specFromSentencePiece(bytes: Uint8Array, addedTokens?: Record<string, number>): TokenizerSpec {
  const model = parseSentencePieceModel(bytes);
  const unsupported: string[] = [];
  if (model.treatWhitespaceAsSuffix) unsupported.push("treat_whitespace_as_suffix");
  if (model.charsMapSize > 0) unsupported.push(`normalization rule "${model.normalizerName}"`);
  if (unsupported.length > 0) {
    throw new UnsupportedModelError(
      `The SentencePiece model uses ${unsupported.join(", ")}, which pali's tokenizer does not implement (Gemma uses an identity normalizer). Use the tokenizer.model of a Gemma or PaliGemma checkpoint.`,
    );
  }
  const pieces = model.pieces.map((p) => p.piece);
  const spec: TokenizerSpec = {
    pieces,
    scores: Float32Array.from(model.pieces, (p) => p.score),
    types: Uint8Array.from(model.pieces, (p) => p.type),
    baseSize: pieces.length,
    byteFallback: model.byteFallback,
    addDummyPrefix: model.addDummyPrefix,
    removeExtraWhitespaces: model.removeExtraWhitespaces,
    escapeWhitespaces: model.escapeWhitespaces,
    unkId: model.unkId,
    bosId: model.bosId,
    eosId: model.eosId,
    padId: model.padId,
  };
  if (addedTokens !== undefined) appendAddedTokens(spec, addedTokens);
  return spec;
}

/** Added tokens extend the vocabulary id by id; one that names an existing piece by its own id is a no-op. */
function appendAddedTokens(spec: TokenizerSpec, addedTokens: Record<string, number>): void {
  const entries = Object.entries(expectObject(addedTokens, "addedTokens")).map(([piece, id]) => {
    expectInteger(id, `addedTokens[${JSON.stringify(piece)}]`, 0);
    if (piece.length === 0)
      throw new InvalidArgumentError("Expected non-empty token strings in addedTokens but received an empty one");
    return [piece, id as number] as const;
  });
  entries.sort((a, b) => a[1] - b[1]);
  for (const [piece, id] of entries) {
    if (id < spec.pieces.length) {
      if (spec.pieces[id] === piece) continue;
      throw new InvalidArgumentError(
        `Added token ${JSON.stringify(piece)} has id ${id}, which is already ${JSON.stringify(spec.pieces[id])}; added tokens must follow the vocabulary (next id ${spec.pieces.length})`,
      );
    }
    if (id !== spec.pieces.length) {
      throw new InvalidArgumentError(
        `Added token ${JSON.stringify(piece)} has id ${id}, but the next free id is ${spec.pieces.length}; added tokens must extend the vocabulary without gaps`,
      );
    }
    if (spec.pieces.includes(piece)) {
      throw new InvalidArgumentError(`Added token ${JSON.stringify(piece)} (id ${id}) is already a piece of the model`);
    }
    spec.pieces.push(piece);
  }
  const grown = spec.pieces.length;
  if (grown > spec.scores.length) {
    const scores = new Float32Array(grown);
    scores.set(spec.scores);
    spec.scores = scores;
    const types = new Uint8Array(grown).fill(PieceType.Control);
    types.set(spec.types);
    spec.types = types;
  }
}

export function specFromGGUF(file: GGUFFile): TokenizerSpec {
  const get = (key: string): GGUFValue | undefined => file.metadata.get(`tokenizer.ggml.${key}`);
  const fail = (message: string) => new ModelFormatError(`${file.path}: metadata ${message}; convert the model again with pali.`);
  const model = get("model");
  if (model === undefined || model.type !== "str") throw fail("tokenizer.ggml.model is missing or not a string");
  if (model.value !== "llama") {
    throw new UnsupportedModelError(
      `${file.path}: tokenizer.ggml.model is "${model.value}", but PaliGemma uses a SentencePiece ("llama") tokenizer.`,
    );
  }
  const tokens = get("tokens");
  if (tokens?.type !== "arr" || tokens.itemType !== "str") throw fail("tokenizer.ggml.tokens is missing or not a string array");
  const n = tokens.value.length;
  const scores = get("scores");
  if (scores !== undefined && (scores.type !== "arr" || scores.itemType !== "f32" || scores.value.length !== n)) {
    throw fail(`tokenizer.ggml.scores should be ${n} f32 values`);
  }
  const tokenTypes = get("token_type");
  if (tokenTypes !== undefined && (tokenTypes.type !== "arr" || tokenTypes.itemType !== "i32" || tokenTypes.value.length !== n)) {
    throw fail(`tokenizer.ggml.token_type should be ${n} i32 values`);
  }
  const types = new Uint8Array(n).fill(PieceType.Normal);
  if (tokenTypes?.type === "arr" && tokenTypes.itemType === "i32") {
    tokenTypes.value.forEach((t, id) => {
      if (!isPieceType(t)) throw fail(`tokenizer.ggml.token_type[${id}] is ${t}, not a token type 1..6`);
      types[id] = t;
    });
  }
  const bool = (key: string, fallback: boolean): boolean => {
    const v = get(key);
    if (v === undefined) return fallback;
    if (v.type !== "bool") throw fail(`tokenizer.ggml.${key} should be a bool`);
    return v.value;
  };
  const charsMap = get("precompiled_charsmap");
  if (charsMap?.type === "arr" && charsMap.value.length > 0) {
    throw new UnsupportedModelError(
      `${file.path}: the tokenizer normalizes text (a precompiled charsmap), which pali's tokenizer does not implement.`,
    );
  }
  const pieces = tokens.value;
  // As in llama.cpp: byte fallback whenever the vocabulary has byte tokens.
  const byteFallback = types.includes(PieceType.Byte);
  const entries = pieces.map((piece, id) => ({ piece, type: types[id] as PieceType }));
  const unkFromTypes = validatePieces(entries, byteFallback, (message) => fail(`tokenizer.ggml.tokens: ${message}`));
  const id = (key: string, fallback: number): number => {
    const v = get(key);
    if (v === undefined) return fallback;
    if (v.type !== "u32" && v.type !== "i32") throw fail(`tokenizer.ggml.${key} should be a u32`);
    if (v.value >= n) throw fail(`tokenizer.ggml.${key} is ${v.value} but the vocabulary has ${n} tokens`);
    return v.value < 0 ? -1 : v.value;
  };
  const unkId = id("unknown_token_id", unkFromTypes);
  if (unkId !== unkFromTypes) throw fail(`tokenizer.ggml.unknown_token_id is ${unkId} but the UNKNOWN token is ${unkFromTypes}`);
  return {
    pieces,
    scores: scores?.type === "arr" && scores.itemType === "f32" ? Float32Array.from(scores.value) : new Float32Array(n),
    types,
    baseSize: n,
    byteFallback,
    // llama.cpp adds a space prefix to SentencePiece models unless told otherwise.
    addDummyPrefix: bool("add_space_prefix", true),
    removeExtraWhitespaces: bool("remove_extra_whitespaces", false),
    escapeWhitespaces: true,
    unkId,
    bosId: id("bos_token_id", -1),
    eosId: id("eos_token_id", -1),
    padId: id("padding_token_id", -1),
  };
}
