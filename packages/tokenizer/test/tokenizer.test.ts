/** Tokenizer behaviour beyond the parity cases: special tokens, hand-made vocabularies, bad input, speed. */
import { InvalidArgumentError } from "@pali/base";
import { describe, expect, it } from "vitest";
import { PieceType, Tokenizer } from "../src/index.js";
import { cases, fixtureTokenizer, modelBytes } from "./helpers/fixtures.js";
import { bytePieces, smallModel } from "./helpers/proto.js";

describe("special and user-defined tokens", () => {
  const tok = fixtureTokenizer();
  const id = (piece: string) => tok.idOf(piece) as number;

  it("has the PaliGemma layout of ids", () => {
    expect([tok.padId, tok.eosId, tok.bosId, tok.unkId]).toEqual([0, 1, 2, 3]);
    expect(id("<loc0000>")).toBe(4000);
    expect(id("<seg127>")).toBe(5151);
    expect(id("<image>")).toBe(5152);
    expect(tok.vocabSize).toBe(5153);
    expect(tok.typeOf(5152)).toBe(PieceType.Control);
    expect(tok.typeOf(4000)).toBe(PieceType.UserDefined);
  });

  it("matches <loc>/<seg> whole, also inside words and in a row", () => {
    expect(tok.encode("<loc0001><loc1023><seg000>")).toEqual([4001, 5023, 5024]);
    const ids = tok.encode("abc<loc0042>def");
    expect(ids).toContain(4042);
    expect(tok.decode(ids)).toBe("abc<loc0042>def");
  });

  it("reads control tokens and <image> as text unless parseSpecial", () => {
    const text = "<image><image><bos>caption en<eos>";
    const plain = tok.encode(text);
    expect(plain).not.toContain(id("<bos>"));
    expect(plain).not.toContain(id("<image>"));
    expect(tok.decode(plain)).toBe(text);
    const special = tok.encode(text, { parseSpecial: true });
    expect(special.slice(0, 3)).toEqual([5152, 5152, 2]);
    expect(special.at(-1)).toBe(1);
    expect(special.slice(3, -1)).toEqual(tok.encode("caption en"));
    expect(tok.encode("<pad><unk>", { parseSpecial: true })).toEqual([0, 3]);
    expect(tok.encode("<loc0001>\n", { parseSpecial: true })).toEqual([4001, id("\n")]);
  });

  it("keeps control tokens out of decoded text unless keepSpecial, and keeps <loc>/<seg>", () => {
    const ids = [5152, 2, ...tok.encode("detect cat\n"), 4001, 5025, ...tok.encode(" cat"), 1, 0, 3];
    expect(tok.decode(ids)).toBe("detect cat\n<loc0001><seg001> cat");
    expect(tok.decode(ids, { keepSpecial: true })).toBe("<image><bos>detect cat\n<loc0001><seg001> cat<eos><pad><unk>");
  });

  it("maps pieces and ids both ways", () => {
    const ids = tok.encode("Hello world");
    expect(tok.pieces(ids).join("")).toBe("Hello▁world");
    expect(ids.map((i) => tok.idOf(tok.pieceOf(i)))).toEqual(ids);
    expect(tok.idOf("no such piece")).toBeUndefined();
    expect(tok.pieceOf(id("<0x41>"))).toBe("<0x41>");
  });
});

describe("lone surrogates", () => {
  const tok = fixtureTokenizer();
  it("encodes each lone surrogate as U+FFFD", () => {
    for (const [bad, good] of [
      ["a\uD800b", "a\uFFFDb"],
      ["\uDC00", "\uFFFD"],
      ["x\uD83D", "x\uFFFD"],
      ["\uDE00\uD83D\uDE00\uD83D", "\uFFFD\u{1F600}\uFFFD"],
    ]) {
      expect(tok.encode(bad as string)).toEqual(tok.encode(good as string));
      expect(tok.decode(tok.encode(bad as string))).toBe(good);
    }
  });
});

describe("hand-made vocabularies", () => {
  const base = [{ piece: "a" }, { piece: "b" }, { piece: "c" }, { piece: "d" }, { piece: "▁" }];
  const ids = (tok: Tokenizer, text: string) => tok.pieces(tok.encode(text));
  // Expected pieces checked against sentencepiece 0.2.2 with the same hand-made protos.

  it("merges the highest score first and breaks ties leftmost", () => {
    const tok = Tokenizer.fromSentencePiece(
      smallModel([
        ...base,
        { piece: "ab", score: -2 },
        { piece: "bc", score: -1 },
        { piece: "aa", score: -3 },
        { piece: "aaa", score: -4 },
      ]),
    );
    expect(ids(tok, "abc")).toEqual(["a", "bc"]);
    expect(ids(tok, "abab")).toEqual(["ab", "ab"]);
    // leftmost "aa" first; its pair with the next "a" ("aaa", -4) waits behind the next "aa" (-3), which
    // makes it stale, and the second "aa" then takes the last "a"
    expect(ids(tok, "aaaaa")).toEqual(["aa", "aaa"]);
    expect(ids(tok, "aaaa")).toEqual(["aa", "aa"]);
    expect(ids(tok, "aaa")).toEqual(["aaa"]);
  });

  it("merges through UNUSED pieces and splits them again, as sentencepiece's rev_merge does", () => {
    const tok = Tokenizer.fromSentencePiece(
      smallModel([
        ...base,
        { piece: "ab", score: -1 },
        { piece: "abc", score: -2, type: PieceType.Unused },
        { piece: "abcd", score: -3 },
      ]),
    );
    expect(ids(tok, "abc")).toEqual(["ab", "c"]);
    expect(ids(tok, "abcd")).toEqual(["abcd"]);
    expect(ids(tok, "abcab")).toEqual(["ab", "c", "ab"]);
  });

  it("collapses runs of unknown characters into one <unk> without byte fallback", () => {
    const tok = Tokenizer.fromSentencePiece(smallModel(base));
    expect(tok.encode("axyzb€a")).toEqual([3, 0, 4, 0, 3]);
    expect(tok.decode(tok.encode("axyzb"))).toBe("ab");
  });

  it("falls back to UTF-8 bytes with byte fallback", () => {
    const tok = Tokenizer.fromSentencePiece(smallModel([...bytePieces(), ...base], { byteFallback: true }));
    expect(ids(tok, "a€")).toEqual(["a", "<0xE2>", "<0x82>", "<0xAC>"]);
    expect(tok.decode(tok.encode("a€😀b"))).toBe("a€😀b");
  });

  it("adds and strips the dummy prefix when the model asks for it", () => {
    const tok = Tokenizer.fromSentencePiece(smallModel([...base, { piece: "▁a", score: -1 }], { addDummyPrefix: true }));
    expect(tok.addDummyPrefix).toBe(true);
    expect(ids(tok, "a a")).toEqual(["▁a", "▁a"]);
    expect(tok.decode(tok.encode("a a"))).toBe("a a");
    expect(tok.decode([1, ...tok.encode("a")])).toBe("a");
    expect(tok.encode("")).toEqual([]);
  });

  it("strips and collapses spaces with remove_extra_whitespaces, as sentencepiece's default normalizer", () => {
    const pieces = [...base, { piece: "▁a", score: -1 }];
    const plain = Tokenizer.fromSentencePiece(smallModel(pieces, { removeExtraWhitespaces: true }));
    expect(ids(plain, "  a   a  ")).toEqual(["a", "▁a"]);
    expect(ids(plain, " ")).toEqual([]);
    expect(ids(plain, "a▁")).toEqual(["a"]);
    expect(ids(plain, "b  \t a")).toEqual(["b", "▁", "<unk>", "▁a"]);
    expect(plain.decode(plain.encode("  a   a  "))).toBe("a a");
    expect(plain.decode([4, 4, 8, 4])).toBe("bb ab");
    expect(plain.decode([1, 8, 8])).toBe("a a");
    const prefixed = Tokenizer.fromSentencePiece(smallModel(pieces, { removeExtraWhitespaces: true, addDummyPrefix: true }));
    expect(ids(prefixed, "  a   a  ")).toEqual(["▁a", "▁a"]);
    expect(ids(prefixed, "a▁")).toEqual(["▁a"]);
    expect(ids(prefixed, "▁a")).toEqual(["▁", "▁a"]);
    expect(prefixed.decode(prefixed.encode("▁a"))).toBe("a");
  });
});

describe("input checks", () => {
  const tok = fixtureTokenizer();
  it("rejects bad arguments with InvalidArgumentError", () => {
    const calls: (() => unknown)[] = [
      () => tok.encode(42 as unknown as string),
      () => tok.encode("a", { parseSpecial: "yes" as unknown as boolean }),
      () => tok.encode("a", null as unknown as object),
      () => tok.decode([1, 2, tok.vocabSize]),
      () => tok.decode([-1]),
      () => tok.decode([1.5]),
      () => tok.decode("1 2 3" as unknown as number[]),
      () => tok.decode([1], { keepSpecial: 1 as unknown as boolean }),
      () => tok.pieceOf(Number.NaN),
      () => tok.pieces([99999]),
      () => tok.createStreamDecoder().push(-3),
      () => Tokenizer.fromSentencePiece(modelBytes(), { "<image>": 6000 }),
      () => Tokenizer.fromSentencePiece(modelBytes(), { "<image>": 2 }),
      () => Tokenizer.fromSentencePiece(modelBytes(), { "<bos>": 5152 }),
      () => Tokenizer.fromSentencePiece(modelBytes(), { "<image>": 5152.5 }),
    ];
    for (const call of calls) expect(call).toThrow(InvalidArgumentError);
  });

  it("accepts added tokens that restate existing pieces", () => {
    const tok2 = Tokenizer.fromSentencePiece(modelBytes(), { "<loc0000>": 4000, "<image>": 5152, "<image2>": 5153 });
    expect(tok2.vocabSize).toBe(5154);
    expect(tok2.encode("<image2>", { parseSpecial: true })).toEqual([5153]);
  });
});

describe("long input", () => {
  it("encodes 10 MB of mixed text quickly and exactly", () => {
    const tok = fixtureTokenizer();
    const texts = cases().map((c) => c.text);
    const parts: string[] = [];
    let size = 0;
    for (let i = 0; size < 10 * 1024 * 1024; i = (i * 7 + 13) % texts.length) {
      const t = texts[i] as string;
      parts.push(t, " ");
      size += t.length + 1;
    }
    // a long run without spaces, so that one chunk is large, too
    parts.push("猫が窓".repeat(100_000));
    const text = parts.join("");
    const start = performance.now();
    const ids = tok.encode(text);
    const seconds = (performance.now() - start) / 1000;
    expect(seconds).toBeLessThan(20);
    expect(tok.decode(ids)).toBe(text.replaceAll("▁", " "));
  });
});
