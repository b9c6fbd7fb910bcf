/** decode() and the streaming decoder: UTF-8 across byte pieces, sentencepiece's U+FFFD rules. */
import { describe, expect, it } from "vitest";
import { cases, fixtureTokenizer } from "./helpers/fixtures.js";

const tok = fixtureTokenizer();
const byte = (b: number) => tok.idOf(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`) as number;

function streamed(ids: readonly number[]): string[] {
  const decoder = tok.createStreamDecoder();
  const out = ids.map((id) => decoder.push(id));
  out.push(decoder.flush());
  return out;
}

describe("streaming decoder", () => {
  it("never emits U+FFFD for valid text and adds up to decode() for every case", () => {
    let withBytes = 0;
    for (const c of cases()) {
      const parts = streamed(c.ids);
      expect(parts.join("")).toBe(tok.decode(c.ids));
      if (!c.text.includes("\uFFFD")) {
        for (const part of parts) expect(part).not.toContain("\uFFFD");
      }
      if (tok.pieces(c.ids).some((p) => p.startsWith("<0x"))) withBytes++;
    }
    expect(withBytes).toBeGreaterThan(300);
  });

  it("holds back an unfinished character until its last byte", () => {
    const ids = [...tok.encode("a"), byte(0xf0), byte(0x9f), byte(0x98), byte(0x80), ...tok.encode("b")];
    expect(streamed(ids)).toEqual(["a", "", "", "", "😀", "b", ""]);
  });

  it("emits what is pending on flush", () => {
    const decoder = tok.createStreamDecoder();
    expect(decoder.push(byte(0xe4))).toBe("");
    expect(decoder.push(byte(0xb8))).toBe("");
    expect(decoder.flush()).toBe("\uFFFD\uFFFD");
    expect(decoder.flush()).toBe("");
  });

  it("agrees with decode() on random mixes of byte and text pieces", () => {
    let seed = 99;
    const random = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const text = tok.encode("ab <loc0001>\n");
    for (let n = 0; n < 2000; n++) {
      const ids = Array.from({ length: 1 + Math.floor(random() * 12) }, () =>
        random() < 0.75 ? byte(Math.floor(random() * 256)) : (text[Math.floor(random() * text.length)] as number),
      );
      expect(streamed(ids).join("")).toBe(tok.decode(ids));
    }
  });
});

describe("decode of invalid UTF-8", () => {
  // Expected strings from sentencepiece 0.2.2: one U+FFFD per byte that does not start a valid character.
  const expected: [number[], string][] = [
    [[0xe4, 0xb8, 0xad], "中"],
    [[0xe4, 0xb8], "\uFFFD\uFFFD"],
    [[0xe4, 0x41], "\uFFFDA"],
    [[0xc0, 0x80], "\uFFFD\uFFFD"],
    [[0xed, 0xa0, 0x80], "\uFFFD\uFFFD\uFFFD"],
    [[0xf0, 0x9f, 0x98], "\uFFFD\uFFFD\uFFFD"],
    [[0xf0, 0x9f, 0x98, 0x80], "😀"],
    [[0x80, 0x80], "\uFFFD\uFFFD"],
    [[0xff], "\uFFFD"],
    [[0xf4, 0x90, 0x80, 0x80], "\uFFFD\uFFFD\uFFFD\uFFFD"],
    [[0xef, 0xbf, 0xbd], "\uFFFD"],
  ];
  it.each(expected)("bytes %j", (bytes, text) => {
    expect(tok.decode(bytes.map(byte))).toBe(text);
    expect(streamed(bytes.map(byte)).join("")).toBe(text);
  });

  it("ends a byte run at a text piece", () => {
    const ids = [byte(0xe4), ...tok.encode("a"), byte(0xb8), byte(0xad)];
    expect(tok.decode(ids)).toBe("\uFFFDa\uFFFD\uFFFD");
  });
});
