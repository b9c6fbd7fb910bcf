/**
 * Id-for-id parity with the `sentencepiece` library on the committed cases (models/fixtures/tokenizer),
 * plus the round trip text → ids → text that sentencepiece itself gives.
 */
import { describe, expect, it } from "vitest";
import { type Case, cases, fixtureTokenizer } from "./helpers/fixtures.js";

const all = cases();

describe("sentencepiece parity", () => {
  it("has at least 2000 cases", () => {
    expect(all.length).toBeGreaterThanOrEqual(2000);
  });

  it("encodes every case to sentencepiece's ids", () => {
    const tok = fixtureTokenizer();
    const mismatches: { text: string; expected: number[]; actual: number[] }[] = [];
    for (const c of all) {
      const actual = tok.encode(c.text);
      if (actual.length !== c.ids.length || actual.some((id, i) => id !== c.ids[i])) {
        mismatches.push({ text: c.text, expected: c.ids, actual });
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(mismatches.length).toBe(0);
  });

  it("gets the same ids from one BPE run over the whole text as from the pre-split chunks", () => {
    const tok = fixtureTokenizer();
    // the private whole-text path is sentencepiece's procedure without the MergeBigrams split
    // biome-ignore lint/complexity/useLiteralKeys: bracket access reaches private members on purpose
    const whole = (text: string): number[] => tok["encodeWhole"](text.replaceAll(" ", "▁"), tok["userTrie"]);
    const long = all.map((c) => c.text).join("\n");
    for (const text of [...all.map((c) => c.text), long]) expect(whole(text)).toEqual(tok.encode(text));
  });

  it("names the same pieces", () => {
    const tok = fixtureTokenizer();
    const withPieces = all.filter((c): c is Case & { pieces: string } => c.pieces !== undefined);
    expect(withPieces.length).toBeGreaterThan(2000);
    for (const c of withPieces) expect(tok.pieces(c.ids).join(" ")).toBe(c.pieces);
  });

  it("decodes every case as sentencepiece does", () => {
    const tok = fixtureTokenizer();
    let roundTrips = 0;
    for (const c of all) {
      const decoded = tok.decode(c.ids);
      expect(decoded).toBe(c.decoded ?? c.text);
      if (c.decoded === undefined) {
        expect(tok.decode(tok.encode(c.text))).toBe(c.text);
        roundTrips++;
      }
    }
    expect(roundTrips).toBeGreaterThan(2000);
  });

  it("covers byte fallback, loc/seg, whitespace runs and literal control tokens", () => {
    const tok = fixtureTokenizer();
    const ids = new Set(all.flatMap((c) => c.ids));
    const has = (piece: string) => ids.has(tok.idOf(piece) ?? -1);
    expect([...ids].filter((id) => /^<0x[0-9A-F]{2}>$/.test(tok.pieceOf(id))).length).toBeGreaterThan(100);
    expect(has("<loc0000>") || has("<loc0001>")).toBe(true);
    expect([...ids].some((id) => tok.pieceOf(id).startsWith("<seg"))).toBe(true);
    expect(has("\n\n")).toBe(true);
    expect(has("▁▁▁▁")).toBe(true);
    expect(all.some((c) => c.text.includes("<bos>"))).toBe(true);
    // sentencepiece never emits control ids for text
    for (const special of ["<bos>", "<eos>", "<pad>", "<unk>", "<image>"]) expect(has(special)).toBe(false);
  });
});
