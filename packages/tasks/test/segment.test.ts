/** Segmentation decoding (SPEC §8.1): 4 locs + 16 seg codes + label; bad instances dropped with a reason. */
import { describe, expect, it } from "vitest";
import { type OutputToken, parseDetections, parseSegmentations } from "../src/index.js";

const loc = (v: number) => `<loc${String(v).padStart(4, "0")}>`;
const seg = (v: number) => `<seg${String(v).padStart(3, "0")}>`;
const box = (y1: number, x1: number, y2: number, x2: number) => loc(y1) + loc(x1) + loc(y2) + loc(x2);
const codes = (first: number, n = 16) => Array.from({ length: n }, (_, i) => (first + 7 * i) % 128);
const segs = (values: number[]) => values.map(seg).join("");
const size = { imageWidth: 512, imageHeight: 256 };

describe("parseSegmentations", () => {
  it("decodes box, codes and label of each instance", () => {
    const a = codes(3);
    const b = codes(100);
    const text = `${box(0, 128, 512, 1023)}${segs(a)} cat ; ${box(256, 0, 768, 512)} ${segs(b)} the dog on the left<eos>`;
    const r = parseSegmentations(text, { ...size, labels: ["cat"] });
    expect(r.dropped).toEqual([]);
    expect(r.segmentations.map((s) => [s.label, s.known, s.loc, s.codes])).toEqual([
      ["cat", true, [0, 128, 512, 1023], a],
      ["the dog on the left", false, [256, 0, 768, 512], b],
    ]);
    // x: 128/1024·512 = 64, 1023/1024·512 = 511.5 → 512 (half to even); y: 512/1024·256 = 128
    expect(r.segmentations[0]?.box).toEqual({ x1: 64, y1: 0, x2: 512, y2: 128 });
    expect(r.segmentations[1]?.box).toEqual({ x1: 0, y1: 64, x2: 256, y2: 192 });
    expect(a).toEqual([3, 10, 17, 24, 31, 38, 45, 52, 59, 66, 73, 80, 87, 94, 101, 108]);
  });

  it("drops instances with missing, short, long or out-of-range seg codes, never throwing", () => {
    const text = [
      `${box(1, 2, 3, 4)} no mask`,
      `${box(1, 2, 3, 4)}${segs(codes(0, 15))} short`,
      `${box(1, 2, 3, 4)}${segs(codes(0, 17))} long`,
      `${box(1, 2, 3, 4)}${segs([...codes(0, 15), 128])} bad code`,
      `${box(1, 2, 3, 4)}${seg(999)}${segs(codes(0, 15))} bad code 2`,
      `${box(3, 2, 1, 4)}${segs(codes(0))} empty box`,
      `${loc(1)}${loc(2)}${segs(codes(0))} partial`,
      `${box(10, 20, 30, 40)}${segs(codes(5))} good`,
    ].join(" ; ");
    const r = parseSegmentations(text, size);
    expect(r.segmentations.map((s) => [s.label, s.codes])).toEqual([["good", codes(5)]]);
    expect(r.dropped.map((d) => [d.reason, d.message])).toEqual([
      ["missing-mask", "no segmentation tokens follow the box"],
      ["mask-length", "expected 16 segmentation tokens but found 15"],
      ["mask-length", "expected 16 segmentation tokens but found 17"],
      ["seg-out-of-range", "segmentation code 128 is outside 0..127"],
      ["seg-out-of-range", "segmentation code 999 is outside 0..127"],
      ["empty-box", "the box has y1=3, x1=2, y2=1, x2=4: y2 <= y1 or x2 <= x1"],
      ["partial-box", "expected 4 location tokens but found 2"],
    ]);
    expect(r.dropped.map((d) => d.text.slice(d.text.lastIndexOf(">") + 1).trim())).toEqual([
      "no mask",
      "short",
      "long",
      "bad code",
      "bad code 2",
      "empty box",
      "partial",
    ]);
    expect(r.dropped.every((d) => d.text.startsWith("<loc") && text.slice(...d.textRange) === d.text)).toBe(true);
  });

  it("returns nothing for empty output", () => {
    expect(parseSegmentations("", size)).toEqual({ segmentations: [], dropped: [], text: "" });
    expect(parseSegmentations("<eos>", size)).toEqual({ segmentations: [], dropped: [], text: "<eos>" });
  });

  it("scores an instance over its loc, seg and label tokens", () => {
    const out: OutputToken[] = [
      ...[1, 2, 3, 4].map((v) => ({ id: 256000 + v, text: loc(v * 10), prob: 0.8 })),
      ...codes(9).map((c) => ({ id: 257024 + c, text: seg(c), prob: 0.5 })),
      { id: 5000, text: " zebra", prob: 0.2 },
      { id: 1, text: "", prob: 0.9 },
    ];
    const r = parseSegmentations(out, size);
    expect(r.segmentations).toHaveLength(1);
    const s = r.segmentations[0];
    expect(s?.tokenRange).toEqual([0, 21]);
    expect(s?.score).toBeCloseTo((4 * 0.8 + 16 * 0.5 + 0.2) / 21, 12);
    expect(s?.codes).toEqual(codes(9));
    expect(s?.loc).toEqual([10, 20, 30, 40]);
    // The detection decoder reads the same output as a box, over the same tokens.
    const d = parseDetections(out, size).detections;
    expect(d.map((x) => [x.label, x.loc, x.tokenRange])).toEqual([["zebra", [10, 20, 30, 40], [0, 21]]]);
  });
});
