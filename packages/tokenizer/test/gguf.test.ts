/** Tokenizer.fromGGUF: the tokenizer.ggml.* metadata of a GGUF gives the same tokenizer as tokenizer.model. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ModelFormatError, UnsupportedModelError } from "@pali/base";
import { type GGUFValue, readGGUF, writeGGUF } from "@pali/gguf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PieceType, parseSentencePieceModel, Tokenizer } from "../src/index.js";
import { addedTokens, cases, fixtureTokenizer, modelBytes } from "./helpers/fixtures.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-tokenizer-gguf-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The metadata a converter writes for the fixture model, with <image> appended as a CONTROL token. */
function tokenizerMetadata(): Map<string, GGUFValue> {
  const model = parseSentencePieceModel(modelBytes());
  const image = addedTokens()["<image>"] as number;
  expect(image).toBe(model.pieces.length);
  const tokens = [...model.pieces.map((p) => p.piece), "<image>"];
  return new Map<string, GGUFValue>([
    ["general.architecture", { type: "str", value: "gemma" }],
    ["tokenizer.ggml.model", { type: "str", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "arr", itemType: "str", value: tokens }],
    [
      "tokenizer.ggml.scores",
      { type: "arr", itemType: "f32", value: Float32Array.from([...model.pieces.map((p) => p.score), 0]) },
    ],
    [
      "tokenizer.ggml.token_type",
      { type: "arr", itemType: "i32", value: Int32Array.from([...model.pieces.map((p) => p.type), PieceType.Control]) },
    ],
    ["tokenizer.ggml.bos_token_id", { type: "u32", value: model.bosId }],
    ["tokenizer.ggml.eos_token_id", { type: "u32", value: model.eosId }],
    ["tokenizer.ggml.unknown_token_id", { type: "u32", value: model.unkId }],
    ["tokenizer.ggml.padding_token_id", { type: "u32", value: model.padId }],
    ["tokenizer.ggml.add_space_prefix", { type: "bool", value: false }],
  ]);
}

async function roundTrip(name: string, metadata: Map<string, GGUFValue>): Promise<Tokenizer> {
  const path = join(dir, name);
  await writeGGUF(path, metadata, []);
  return Tokenizer.fromGGUF(await readGGUF(path));
}

describe("Tokenizer.fromGGUF", () => {
  it("equals fromSentencePiece with added tokens on every case", async () => {
    const fromGGUF = await roundTrip("tok.gguf", tokenizerMetadata());
    const fromModel = fixtureTokenizer();
    expect(fromGGUF.vocabSize).toBe(fromModel.vocabSize);
    expect([fromGGUF.bosId, fromGGUF.eosId, fromGGUF.unkId, fromGGUF.padId]).toEqual([2, 1, 3, 0]);
    expect(fromGGUF.addDummyPrefix).toBe(false);
    for (let id = 0; id < fromModel.vocabSize; id++) {
      expect(fromGGUF.pieceOf(id)).toBe(fromModel.pieceOf(id));
      expect(fromGGUF.typeOf(id)).toBe(fromModel.typeOf(id));
    }
    for (const c of cases()) {
      expect(fromGGUF.encode(c.text)).toEqual(c.ids);
      expect(fromGGUF.encode(c.text, { parseSpecial: true })).toEqual(fromModel.encode(c.text, { parseSpecial: true }));
      expect(fromGGUF.decode(c.ids)).toBe(fromModel.decode(c.ids));
    }
  });

  it("refuses tokenizers that are not SentencePiece", async () => {
    const metadata = tokenizerMetadata();
    metadata.set("tokenizer.ggml.model", { type: "str", value: "gpt2" });
    await expect(roundTrip("gpt2.gguf", metadata)).rejects.toThrow(UnsupportedModelError);
  });

  it("reports missing or inconsistent tokenizer metadata with ModelFormatError", async () => {
    const edits: [string, (m: Map<string, GGUFValue>) => void][] = [
      ["no model", (m) => m.delete("tokenizer.ggml.model")],
      ["no tokens", (m) => m.delete("tokenizer.ggml.tokens")],
      ["short scores", (m) => m.set("tokenizer.ggml.scores", { type: "arr", itemType: "f32", value: new Float32Array(3) })],
      [
        "bad token type",
        (m) => m.set("tokenizer.ggml.token_type", { type: "arr", itemType: "i32", value: new Int32Array(5153).fill(7) }),
      ],
      ["bos out of range", (m) => m.set("tokenizer.ggml.bos_token_id", { type: "u32", value: 999999 })],
      ["wrong unk", (m) => m.set("tokenizer.ggml.unknown_token_id", { type: "u32", value: 5 })],
      ["tokens as numbers", (m) => m.set("tokenizer.ggml.tokens", { type: "arr", itemType: "i32", value: new Int32Array(3) })],
    ];
    for (const [name, edit] of edits) {
      const metadata = tokenizerMetadata();
      edit(metadata);
      await expect(roundTrip(`${name.replaceAll(" ", "-")}.gguf`, metadata), name).rejects.toThrow(ModelFormatError);
    }
  });

  it("follows llama.cpp's default of a space prefix when add_space_prefix is absent", async () => {
    const metadata = tokenizerMetadata();
    metadata.delete("tokenizer.ggml.add_space_prefix");
    const tok = await roundTrip("prefix.gguf", metadata);
    expect(tok.addDummyPrefix).toBe(true);
    expect(tok.pieces(tok.encode("the cat"))[0]).toBe("▁the");
  });
});
