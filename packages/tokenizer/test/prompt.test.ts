/** The PaliGemma prefix and suffix layout (SPEC §2.1, §9.11). */
import { InvalidArgumentError } from "@pali/base";
import { describe, expect, it } from "vitest";
import { buildPrefixIds, buildSuffixIds, type Tokenizer } from "../src/index.js";
import { fixtureTokenizer } from "./helpers/fixtures.js";

const tok = fixtureTokenizer();
const image = tok.idOf("<image>") as number;
const newline = tok.idOf("\n") as number;

describe("buildPrefixIds", () => {
  it("puts N image tokens, <bos>, then the prompt tokenized with its newline", () => {
    const ids = buildPrefixIds(tok, { prompt: "caption en", imageTokenCount: 256, imageTokenId: image });
    expect(ids.slice(0, 256)).toEqual(new Array(256).fill(image));
    expect(ids[256]).toBe(tok.bosId);
    expect(ids.slice(257)).toEqual(tok.encode("caption en\n"));
    expect(ids.at(-1)).toBe(newline);
  });

  it("gives [<image>×N, <bos>, \\n] for an empty prompt, as the HF test expects", () => {
    expect(buildPrefixIds(tok, { prompt: "", imageTokenCount: 4, imageTokenId: image })).toEqual([
      image,
      image,
      image,
      image,
      2,
      newline,
    ]);
  });

  it("tokenizes a trailing newline together with the separator", () => {
    const ids = buildPrefixIds(tok, { prompt: "answer en what?\n", imageTokenCount: 1, imageTokenId: image });
    expect(ids.at(-1)).toBe(tok.idOf("\n\n"));
  });

  it("keeps special-looking text as text unless parseSpecial", () => {
    const prompt = "detect <eos> <loc0001>";
    const plain = buildPrefixIds(tok, { prompt, imageTokenCount: 1, imageTokenId: image });
    expect(plain).not.toContain(tok.eosId);
    expect(plain).toContain(4001);
    const special = buildPrefixIds(tok, { prompt, imageTokenCount: 1, imageTokenId: image, parseSpecial: true });
    expect(special).toContain(tok.eosId);
  });

  it("rejects bad options with InvalidArgumentError", () => {
    const ok = { prompt: "caption en", imageTokenCount: 256, imageTokenId: image };
    const bad: unknown[] = [
      { ...ok, prompt: 3 },
      { ...ok, imageTokenCount: 0 },
      { ...ok, imageTokenCount: 2.5 },
      { ...ok, imageTokenId: tok.vocabSize },
      { ...ok, imageTokenId: -1 },
      { ...ok, parseSpecial: "no" },
      null,
    ];
    for (const options of bad) {
      expect(() => buildPrefixIds(tok, options as Parameters<typeof buildPrefixIds>[1])).toThrow(InvalidArgumentError);
    }
    expect(() => buildPrefixIds({} as Tokenizer, ok)).toThrow(InvalidArgumentError);
  });
});

describe("buildSuffixIds", () => {
  it("appends <eos> to the encoded suffix", () => {
    expect(buildSuffixIds(tok, "a cat <loc0001>")).toEqual([...tok.encode("a cat <loc0001>"), tok.eosId]);
    expect(buildSuffixIds(tok, "")).toEqual([tok.eosId]);
    expect(() => buildSuffixIds(tok, undefined as unknown as string)).toThrow(InvalidArgumentError);
  });
});
