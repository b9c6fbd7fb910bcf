/** Detection decoding (SPEC §7): boxes, labels, drops, and the token mapping behind scores. */
import { ErrorCode, InvalidArgumentError } from "@pali/base";
import { describe, expect, it } from "vitest";
import { boxConfidence, type OutputToken, parseDetections, roundHalfEven } from "../src/index.js";

const loc = (v: number) => `<loc${String(v).padStart(4, "0")}>`;
const box = (y1: number, x1: number, y2: number, x2: number) => loc(y1) + loc(x1) + loc(y2) + loc(x2);
const size = { imageWidth: 640, imageHeight: 480 };

describe("parseDetections on text", () => {
  it("decodes the HF integration-test output in original-image pixels", () => {
    const r = parseDetections("<loc0051><loc0309><loc0708><loc0646> shoe", size);
    expect(r.dropped).toEqual([]);
    expect(r.detections).toHaveLength(1);
    const d = r.detections[0];
    expect(d?.label).toBe("shoe");
    expect(d?.loc).toEqual([51, 309, 708, 646]);
    // 51/1024·480 = 23.906, 309/1024·640 = 193.125, 708/1024·480 = 331.875, 646/1024·640 = 403.75
    expect(d?.box).toEqual({ x1: 193, y1: 24, x2: 404, y2: 332 });
    expect(d?.normalized).toEqual({ x1: 309 / 1024, y1: 51 / 1024, x2: 646 / 1024, y2: 708 / 1024 });
    expect(d?.textRange).toEqual([0, 41]);
    expect(d?.known).toBeUndefined();
    expect(d?.tokenRange).toBeUndefined();
    expect(d?.score).toBeUndefined();
  });

  it("rounds ties to even, as Python's round() does", () => {
    expect([0.5, 1.5, 2.5, -0.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([0, 2, 2, 0, 2, 3]);
    // W = 2: 256/1024·2 = 0.5 → 0, 768/1024·2 = 1.5 → 2; H = 6: 256 → 1.5 → 2, 768 → 4.5 → 4
    const d = parseDetections(`${box(256, 256, 768, 768)} x`, { imageWidth: 2, imageHeight: 6 }).detections[0];
    expect(d?.box).toEqual({ x1: 0, y1: 2, x2: 2, y2: 4 });
  });

  it("returns nothing for empty output or output without boxes", () => {
    for (const text of ["", "<eos>", "no shoes here", "   ", "<loc12> cat", "<seg001><seg002> cat"]) {
      const r = parseDetections(text, size);
      expect(r.detections).toEqual([]);
      expect(r.dropped).toEqual([]);
      expect(r.text).toBe(text);
    }
  });

  it("keeps several instances of one class, in output order", () => {
    const text = `${box(10, 20, 110, 220)} cat ; ${box(300, 400, 500, 600)} cat ; ${box(0, 0, 1023, 1023)} cat`;
    const r = parseDetections(text, { imageWidth: 1024, imageHeight: 1024 });
    expect(r.detections.map((d) => d.label)).toEqual(["cat", "cat", "cat"]);
    expect(r.detections.map((d) => d.box)).toEqual([
      { x1: 20, y1: 10, x2: 220, y2: 110 },
      { x1: 400, y1: 300, x2: 600, y2: 500 },
      { x1: 0, y1: 0, x2: 1023, y2: 1023 },
    ]);
    expect(r.detections.map((d) => text.slice(...(d.textRange as [number, number])))).toEqual([
      `${box(10, 20, 110, 220)} cat`,
      `${box(300, 400, 500, 600)} cat`,
      `${box(0, 0, 1023, 1023)} cat`,
    ]);
  });

  it("reads many classes, labels with spaces and non-Latin scripts", () => {
    const labels = Array.from({ length: 40 }, (_, i) => `class ${i}`);
    labels.push("traffic light", "猫", "кошка", "हाथी", "ثعلب", "🐈 emoji");
    const boxes = labels.map((_, i) => [i, 2 * i, i + 100, 2 * i + 100] as const);
    const text = labels.map((label, i) => `${box(...(boxes[i] as [number, number, number, number]))} ${label}`).join(" ; ");
    const r = parseDetections(`${text}<eos>`, { imageWidth: 1024, imageHeight: 2048, labels });
    expect(r.dropped).toEqual([]);
    expect(r.detections.map((d) => d.label)).toEqual(labels);
    expect(r.detections.every((d) => d.known === true)).toBe(true);
    r.detections.forEach((d, i) => {
      const [y1, x1, y2, x2] = boxes[i] as readonly [number, number, number, number];
      expect(d.loc).toEqual([y1, x1, y2, x2]);
      expect(d.box).toEqual({ x1, y1: 2 * y1, x2, y2: 2 * y2 });
    });
  });

  it("keeps labels that were not asked for, flagged known: false", () => {
    const r = parseDetections(`${box(1, 2, 3, 4)} dog ; ${box(5, 6, 7, 8)}  cat  `, { ...size, labels: [" cat "] });
    expect(r.detections.map((d) => [d.label, d.known])).toEqual([
      ["dog", false],
      ["cat", true],
    ]);
  });

  it("skips partial location runs and reports them", () => {
    const text = `${loc(1)}${loc(2)}${loc(3)} cat ; ${box(10, 20, 30, 40)} dog ; ${loc(100)}${loc(200)}`;
    const r = parseDetections(text, size);
    expect(r.detections.map((d) => [d.label, d.loc])).toEqual([["dog", [10, 20, 30, 40]]]);
    expect(r.dropped.map((d) => [d.reason, d.text])).toEqual([
      ["partial-box", `${loc(1)}${loc(2)}${loc(3)} cat`],
      ["partial-box", `${loc(100)}${loc(200)}`],
    ]);
    expect(r.dropped[0]?.message).toBe("expected 4 location tokens but found 3");
    // a loc interrupted by text is two runs, not one box
    const split = parseDetections(`${loc(1)}${loc(2)} ${loc(3)}${loc(4)} cat`, size);
    expect(split.detections).toEqual([]);
    expect(split.dropped.map((d) => d.reason)).toEqual(["partial-box", "partial-box"]);
    // a truncated token is plain text
    expect(parseDetections(`${box(1, 2, 3, 4)} dog ; <loc01`, size).detections.map((d) => d.label)).toEqual(["dog"]);
  });

  it("cuts long loc runs into boxes of 4 from the start, as the reference regex does", () => {
    const r = parseDetections(`${box(1, 2, 3, 4)}${box(5, 6, 7, 8)} cat`, size);
    expect(r.detections.map((d) => [d.label, d.loc])).toEqual([
      ["", [1, 2, 3, 4]],
      ["cat", [5, 6, 7, 8]],
    ]);
    const five = parseDetections(`${box(1, 2, 3, 4)}${loc(9)} cat`, size);
    expect(five.detections.map((d) => [d.label, d.loc])).toEqual([["", [1, 2, 3, 4]]]);
    expect(five.dropped.map((d) => [d.reason, d.text])).toEqual([["partial-box", `${loc(9)} cat`]]);
  });

  it("drops boxes with y2 <= y1 or x2 <= x1, and loc values above 1023", () => {
    const text = [
      `${box(500, 100, 400, 200)} upside down`,
      `${box(100, 300, 200, 300)} zero width`,
      `${box(100, 100, 100, 200)} zero height`,
      `${box(100, 100, 200, 1500)} out of range`,
      `${box(100, 100, 101, 101)} tiny`,
    ].join(" ; ");
    const r = parseDetections(text, size);
    expect(r.dropped.map((d) => [d.reason, d.text.slice(37)])).toEqual([
      ["empty-box", "upside down"],
      ["empty-box", "zero width"],
      ["empty-box", "zero height"],
      ["loc-out-of-range", "out of range"],
    ]);
    expect(r.dropped[0]?.message).toMatch(/y1=500.*y2=400/);
    expect(r.dropped[3]?.message).toBe("location value 1500 is outside 0..1023");
    // one bin is a valid box even where it rounds to zero pixels (y: 46.875 → 47, 47.34 → 47; x: 62.5 → 62)
    expect(r.detections.map((d) => [d.label, d.box])).toEqual([["tiny", { x1: 62, y1: 47, x2: 63, y2: 47 }]]);
  });

  it("tolerates separators without spaces, text before the first box and trailing <eos>", () => {
    const r = parseDetections(`Here: ${box(1, 2, 3, 4)}cat;${box(5, 6, 7, 8)} dog ;${box(9, 10, 11, 12)} bird <eos>`, size);
    expect(r.detections.map((d) => d.label)).toEqual(["cat", "dog", "bird"]);
    expect(r.dropped).toEqual([]);
  });

  it("validates options", () => {
    expect(() => parseDetections("", { imageWidth: 0, imageHeight: 10 })).toThrow(
      /Expected positive integer for options.imageWidth but received 0/,
    );
    expect(() => parseDetections("", { imageWidth: 10 } as never)).toThrow(InvalidArgumentError);
    expect(() => parseDetections("", { ...size, labels: "cat" as never })).toThrow(/array of strings for options.labels/);
    expect(() => parseDetections(42 as never, size)).toThrow(/string or array of tokens for output/);
  });
});

/** Tokens as a streaming detokenizer hands them out: loc pieces whole, "▁word" as " word", bytes as "". */
function tokens(...parts: [string, number?][]): OutputToken[] {
  return parts.map(([text, prob], i) => (prob === undefined ? { id: 1000 + i, text } : { id: 1000 + i, text, prob }));
}

describe("parseDetections on tokens", () => {
  it("maps each box to its loc and label tokens and scores it", () => {
    const out = tokens(
      ["<loc0051>", 0.9],
      ["<loc0309>", 0.8],
      ["<loc0708>", 0.7],
      ["<loc0646>", 0.6],
      [" shoe", 0.5],
      [" ;", 0.99],
      ["<loc0100>", 1],
      ["<loc0200>", 1],
      ["<loc0300>", 1],
      ["<loc0400>", 1],
      [" traffic", 0.4],
      [" light", 0.2],
      ["", 0.95],
    );
    const r = parseDetections(out, size);
    expect(r.text).toBe("<loc0051><loc0309><loc0708><loc0646> shoe ;<loc0100><loc0200><loc0300><loc0400> traffic light");
    expect(r.detections.map((d) => [d.label, d.tokenRange])).toEqual([
      ["shoe", [0, 5]],
      ["traffic light", [6, 12]],
    ]);
    expect(r.detections[0]?.score).toBeCloseTo((0.9 + 0.8 + 0.7 + 0.6 + 0.5) / 5, 12);
    expect(r.detections[1]?.score).toBeCloseTo((4 + 0.4 + 0.2) / 6, 12);
    expect(boxConfidence(out, r.detections[1]?.tokenRange as [number, number])).toBeCloseTo((4 + 0.4 + 0.2) / 6, 12);
    expect(r.detections[0]?.box).toEqual({ x1: 193, y1: 24, x2: 404, y2: 332 });
  });

  it("maps byte-fallback labels in non-Latin script to the tokens that spell them", () => {
    // "猫" is E7 8C AB: the first two byte tokens decode to "", the third completes the character.
    const out = tokens(
      ["<loc0001>", 0.5],
      ["<loc0002>", 0.5],
      ["<loc0003>", 0.5],
      ["<loc0004>", 0.5],
      [" ", 0.5],
      ["", 0.1],
      ["", 0.2],
      ["猫", 0.3],
      [" ;", 0.5],
      [" ", 0.5],
      ["", 1],
      ["<loc0010>", 0.5],
      ["<loc0020>", 0.5],
      ["<loc0030>", 0.5],
      ["<loc0040>", 0.5],
      [" кошка", 0.5],
    );
    const r = parseDetections(out, { ...size, labels: ["猫", "кошка"] });
    expect(r.detections.map((d) => [d.label, d.known, d.tokenRange])).toEqual([
      ["猫", true, [0, 8]],
      ["кошка", true, [11, 16]],
    ]);
    expect(r.detections[0]?.score).toBeCloseTo((0.5 * 5 + 0.1 + 0.2 + 0.3) / 8, 12);
  });

  it("leaves score out when some token has no probability, and reports token ranges of dropped boxes", () => {
    const out = tokens(
      ["<loc0001>", 0.5],
      ["<loc0002>"],
      ["<loc0003>", 0.5],
      ["<loc0004>", 0.5],
      [" cat", 0.5],
      [" ;"],
      ["<loc0009>"],
    );
    const r = parseDetections(out, size);
    expect(r.detections[0]?.tokenRange).toEqual([0, 5]);
    expect(r.detections[0]?.score).toBeUndefined();
    expect(r.dropped.map((d) => [d.reason, d.tokenRange])).toEqual([["partial-box", [6, 7]]]);
  });

  it("finds loc tokens even when a loc is spelled by several tokens", () => {
    const out = tokens(["<loc", 1], ["0001>", 1], ["<loc0002><loc0003>", 1], ["<loc0004> c", 0.5], ["at", 0], ["<eos>", 1]);
    const r = parseDetections(out, size);
    expect(r.detections.map((d) => [d.label, d.loc, d.tokenRange, d.score])).toEqual([["cat", [1, 2, 3, 4], [0, 5], 0.7]]);
  });

  it("rejects malformed token lists", () => {
    expect(() => parseDetections([{ id: 1, text: "a", prob: 1.5 }], size)).toThrow(
      /probability between 0 and 1 for output\[0\]\.prob but received 1.5/,
    );
    expect(() => parseDetections([{ id: -1, text: "a" }], size)).toThrow(/output\[0\]\.id/);
    expect(() => parseDetections([{ id: 1 } as OutputToken], size)).toThrow(/Expected string for output\[0\]\.text/);
    expect(parseDetections([], size)).toEqual({ detections: [], dropped: [], text: "" });
  });
});

describe("boxConfidence", () => {
  it("is the mean probability over the range", () => {
    expect(boxConfidence([0.1, 0.2, 0.3, 0.4, 0.5], [1, 4])).toBeCloseTo(0.3, 12);
    expect(boxConfidence(new Float32Array([0.25, 0.75]), [0, 2])).toBe(0.5);
    expect(boxConfidence(tokens(["a", 1], ["b", 0]), [0, 2])).toBe(0.5);
  });

  it("rejects bad ranges and missing probabilities", () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return (error as InvalidArgumentError).code;
      }
      return undefined;
    };
    expect(code(() => boxConfidence([0.5], [0, 0]))).toBe(ErrorCode.InvalidArgument);
    expect(() => boxConfidence([0.5], [1, 1])).toThrow(/non-empty token range/);
    expect(() => boxConfidence([0.5], [0, 2])).toThrow(/integer between 0 and 1 for tokenRange\[1\]/);
    expect(() => boxConfidence(tokens(["a"]), [0, 1])).toThrow(/Token 0 has no probability/);
    expect(() => boxConfidence([Number.NaN], [0, 1])).toThrow(/finite number for probabilities\[0\]/);
    expect(() => boxConfidence([2], [0, 1])).toThrow(/probability between 0 and 1/);
  });
});
