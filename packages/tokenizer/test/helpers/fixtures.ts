/** The committed sentencepiece fixtures (models/fixtures/tokenizer, made by make_tokenizer.py / make_cases.py). */
import { readFileSync } from "node:fs";
import { Tokenizer } from "../../src/index.js";

export const fixtureDir = new URL("../../../../models/fixtures/tokenizer/", import.meta.url);

export interface Case {
  text: string;
  ids: number[];
  /** the pieces joined by " " (absent for long cases) */
  pieces?: string;
  /** sp.decode(ids) where it differs from text */
  decoded?: string;
}

export function modelBytes(): Uint8Array {
  return new Uint8Array(readFileSync(new URL("tokenizer.model", fixtureDir)));
}

export function addedTokens(): Record<string, number> {
  return JSON.parse(readFileSync(new URL("added_tokens.json", fixtureDir), "utf8")) as Record<string, number>;
}

export function cases(): Case[] {
  const file = JSON.parse(readFileSync(new URL("cases.json", fixtureDir), "utf8")) as { cases: Case[] };
  return file.cases;
}

let shared: Tokenizer | undefined;
/** The fixture tokenizer with <image> added, as PaliGemma's processor has it. */
export function fixtureTokenizer(): Tokenizer {
  shared ??= Tokenizer.fromSentencePiece(modelBytes(), addedTokens());
  return shared;
}
