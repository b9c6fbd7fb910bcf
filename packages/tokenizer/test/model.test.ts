/** parseSentencePieceModel on the fixture and on damaged or unsupported model files. */
import { ModelFormatError, UnsupportedModelError } from "@pali/base";
import { describe, expect, it } from "vitest";
import { PieceType, parseSentencePieceModel, Tokenizer } from "../src/index.js";
import { modelBytes } from "./helpers/fixtures.js";
import { bytePieces, encodeModel, field, smallModel } from "./helpers/proto.js";

describe("parseSentencePieceModel", () => {
  it("reads the fixture model's pieces and settings", () => {
    const model = parseSentencePieceModel(modelBytes());
    expect(model.pieces.length).toBe(4000 + 1024 + 128);
    expect(model.pieces.slice(0, 4)).toEqual([
      { piece: "<pad>", score: 0, type: PieceType.Control },
      { piece: "<eos>", score: 0, type: PieceType.Control },
      { piece: "<bos>", score: 0, type: PieceType.Control },
      { piece: "<unk>", score: 0, type: PieceType.Unknown },
    ]);
    expect(model.pieces[4]).toEqual({ piece: "\n", score: 0, type: PieceType.UserDefined });
    expect(model.pieces[4000]).toEqual({ piece: "<loc0000>", score: 0, type: PieceType.UserDefined });
    expect(model.pieces[5023]?.piece).toBe("<loc1023>");
    expect(model.pieces[5024]?.piece).toBe("<seg000>");
    expect(model.pieces[5151]?.piece).toBe("<seg127>");
    expect(model.pieces.filter((p) => p.type === PieceType.Byte).length).toBe(256);
    const normal = model.pieces.filter((p) => p.type === PieceType.Normal);
    expect(normal.every((p, i) => i === 0 || p.score <= (normal[i - 1]?.score ?? 0))).toBe(true);
    expect(model).toMatchObject({
      byteFallback: true,
      addDummyPrefix: false,
      removeExtraWhitespaces: false,
      escapeWhitespaces: true,
      treatWhitespaceAsSuffix: false,
      normalizerName: "identity",
      charsMapSize: 0,
      padId: 0,
      eosId: 1,
      bosId: 2,
      unkId: 3,
    });
  });

  it("applies proto2 defaults for absent fields and decodes negative int32", () => {
    const bytes = Uint8Array.from([
      ...field.bytes(1, [...field.string(1, "<unk>"), ...field.varint(3, 2)]),
      ...field.bytes(1, field.string(1, "a")), // no score, no type: NORMAL, 0
      ...field.bytes(2, [...field.varint(3, 2), ...field.varint(41, -1)]),
    ]);
    const model = parseSentencePieceModel(bytes);
    expect(model.pieces[1]).toEqual({ piece: "a", score: 0, type: PieceType.Normal });
    // add_dummy_prefix, remove_extra_whitespaces and escape_whitespaces default to true; pad_id to -1
    expect(model).toMatchObject({
      addDummyPrefix: true,
      removeExtraWhitespaces: true,
      escapeWhitespaces: true,
      bosId: -1,
      padId: -1,
    });
    // eos_id defaults to 2, which this two-piece model lacks: no EOS, as sentencepiece would say
    expect(model.eosId).toBe(-1);
  });

  it("rejects files truncated anywhere but between top-level fields with ModelFormatError", () => {
    const bytes = smallModel([{ piece: "a" }, { piece: "b" }, { piece: "ab", score: -1 }]);
    expect(() => parseSentencePieceModel(bytes)).not.toThrow();
    // protobuf cannot see a cut between two fields: the cut before normalizer_spec leaves a complete model
    let parsed = 0;
    for (let length = 0; length < bytes.length; length++) {
      try {
        parseSentencePieceModel(bytes.subarray(0, length));
        parsed++;
      } catch (error) {
        expect(error, `length ${length}`).toBeInstanceOf(ModelFormatError);
      }
    }
    expect(parsed).toBeLessThanOrEqual(2);
  });

  it("rejects garbage, wrong types and inconsistent vocabularies with ModelFormatError", () => {
    const bad: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["text", new TextEncoder().encode("this is not a model\n")],
      ["a JSON tokenizer", new TextEncoder().encode('{"model":{"type":"BPE"}}')],
      ["field 0", Uint8Array.from([0x00, 0x01])],
      ["group wire type", Uint8Array.from([0x0b, 0x0c])],
      ["over-long varint", Uint8Array.from([0x08, ...new Array(11).fill(0xff)])],
      ["length past the end", Uint8Array.from([0x0a, 0x7f, 0x01])],
      ["pieces as a varint", Uint8Array.from(field.varint(1, 5))],
      [
        "invalid UTF-8 piece",
        encodeModel({ pieces: [{ piece: "<unk>", type: 2 }] }).map((b, i, a) => (i === a.indexOf(0x3c) ? 0xff : b)),
      ],
      ["no trainer spec", Uint8Array.from(field.bytes(1, [...field.string(1, "<unk>"), ...field.varint(3, 2)]))],
      ["no pieces", encodeModel({ pieces: [] })],
      ["no unk", encodeModel({ pieces: [{ piece: "a" }] })],
      ["two unks", smallModel([{ piece: "<unk2>", type: 2 }])],
      ["unknown piece type", smallModel([{ piece: "a", type: 9 }])],
      ["empty piece", smallModel([{ piece: "" }])],
      ["NUL in a piece", smallModel([{ piece: "a\0" }])],
      ["duplicate piece", smallModel([{ piece: "a" }, { piece: "a" }])],
      ["byte piece without byte fallback", smallModel([{ piece: "<0x41>", type: 6 }])],
      ["byte fallback with missing bytes", smallModel(bytePieces().slice(1), { byteFallback: true })],
      ["malformed byte piece", smallModel([...bytePieces(), { piece: "<0xzz>", type: 6 }], { byteFallback: true })],
    ];
    for (const [name, bytes] of bad) {
      expect(() => parseSentencePieceModel(bytes), name).toThrow(ModelFormatError);
    }
  });

  it("rejects non-BPE models, naming the model type", () => {
    for (const [modelType, name] of [
      [1, "unigram"],
      [3, "word"],
      [4, "char"],
    ] as const) {
      const bytes = smallModel([{ piece: "a" }], { modelType });
      expect(() => parseSentencePieceModel(bytes)).toThrow(ModelFormatError);
      expect(() => parseSentencePieceModel(bytes)).toThrow(new RegExp(name));
    }
  });

  it("parses models whose normalization Tokenizer refuses, and Tokenizer says why", () => {
    for (const settings of [{ treatWhitespaceAsSuffix: true }, { normalizerName: "nmt_nfkc", charsMap: [1, 2, 3, 4, 5] }]) {
      const bytes = smallModel([{ piece: "a" }], settings);
      expect(() => parseSentencePieceModel(bytes)).not.toThrow();
      expect(() => Tokenizer.fromSentencePiece(bytes)).toThrow(UnsupportedModelError);
    }
  });

  it("throws ModelFormatError for a non-Uint8Array", () => {
    expect(() => parseSentencePieceModel("tokenizer.model" as unknown as Uint8Array)).toThrow(ModelFormatError);
  });
});
