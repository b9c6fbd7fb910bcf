/** COCO RLE (uncompressed, column-major) and the detection-results export. */
import { describe, expect, it } from "vitest";
import { decodeRle, encodeRle, parseDetections, rleArea, toCocoDetections } from "../src/index.js";

describe("COCO RLE", () => {
  it("encodes column-major, starting with a run of zeros", () => {
    // 3 wide, 2 high:  0 1 1 / 1 1 0  → columns (0,1) (1,1) (1,0) → 0 | 1 1 1 1 | 0
    const mask = new Uint8Array([0, 1, 1, 1, 1, 0]);
    expect(encodeRle(mask, 3, 2)).toEqual({ size: [2, 3], counts: [1, 4, 1] });
    // starting with a 1 gives a leading zero-length run; non-zero values count as 1
    expect(encodeRle(new Uint8Array([255, 0, 0, 7]), 2, 2)).toEqual({ size: [2, 2], counts: [0, 1, 2, 1] });
    expect(encodeRle(new Uint8Array(6), 3, 2)).toEqual({ size: [2, 3], counts: [6] });
    expect(encodeRle(new Uint8Array(6).fill(1), 2, 3)).toEqual({ size: [3, 2], counts: [0, 6] });
    expect(decodeRle({ size: [2, 3], counts: [1, 4, 1] })).toEqual(mask);
    expect(rleArea({ size: [2, 3], counts: [1, 4, 1] })).toBe(4);
  });

  it("round-trips random masks of several shapes", () => {
    let seed = 12345;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (const [w, h] of [
      [1, 1],
      [17, 5],
      [5, 17],
      [64, 64],
      [100, 1],
    ] as const) {
      const mask = new Uint8Array(w * h);
      // blobs rather than noise, so runs span columns
      for (let i = 0; i < mask.length; i++) mask[i] = next() < (i % 3 === 0 ? 0.8 : 0.3) ? 1 : 0;
      const rle = encodeRle(mask, w, h);
      expect(rle.counts.reduce((a, b) => a + b, 0)).toBe(w * h);
      expect(rle.counts.slice(1).every((c) => c > 0)).toBe(true);
      expect(decodeRle(rle)).toEqual(mask);
      expect(rleArea(rle)).toBe(mask.reduce((a, b) => a + b, 0));
    }
  });

  it("rejects RLEs that do not fit their size", () => {
    expect(() => decodeRle({ size: [2, 2], counts: [3, 2] })).toThrow(/more than 2×2 pixels/);
    expect(() => decodeRle({ size: [2, 2], counts: [1, 2] })).toThrow(/add up to 3 pixels but size is 2×2/);
    expect(() => decodeRle({ size: [2, 2], counts: [1, -1] })).toThrow(/rle.counts\[1\]/);
    expect(() => encodeRle(new Uint8Array(5), 2, 2)).toThrow(/Expected 2×2 = 4 values for mask but received 5/);
  });
});

describe("toCocoDetections", () => {
  const categories = [
    { id: 17, name: "cat" },
    { id: 18, name: "dog" },
    { id: 10, name: "traffic light" },
  ];

  it("exports [x, y, w, h] boxes with category ids and scores, skipping unknown labels", () => {
    const text =
      "<loc0051><loc0309><loc0708><loc0646> cat ; <loc0000><loc0000><loc0512><loc0256> traffic light ; " +
      "<loc0100><loc0100><loc0200><loc0200> zebra";
    const { detections } = parseDetections(text, { imageWidth: 640, imageHeight: 480 });
    expect(detections).toHaveLength(3);
    const scored = detections.map((d, i) => ({ ...d, score: [0.9, 0.4, 0.7][i] as number }));
    expect(toCocoDetections(scored, { imageId: 42, categories })).toEqual([
      { image_id: 42, category_id: 17, bbox: [193, 24, 211, 308], score: 0.9 },
      { image_id: 42, category_id: 10, bbox: [0, 0, 160, 240], score: 0.4 },
    ]);
    expect(toCocoDetections(detections, { imageId: 1, categories, defaultScore: 0.5 }).map((d) => d.score)).toEqual([0.5, 0.5]);
    expect(toCocoDetections(detections, { imageId: 1, categories }).map((d) => d.score)).toEqual([1, 1]);
  });

  it("carries a mask's RLE as segmentation", () => {
    const rle = { size: [2, 3] as [number, number], counts: [1, 4, 1] };
    const out = toCocoDetections([{ label: " dog ", box: { x1: 0, y1: 0, x2: 3, y2: 2 }, score: 0.25, rle }], {
      imageId: 0,
      categories,
    });
    expect(out).toEqual([{ image_id: 0, category_id: 18, bbox: [0, 0, 3, 2], score: 0.25, segmentation: rle }]);
  });

  it("validates options", () => {
    expect(() => toCocoDetections([], { imageId: -1, categories })).toThrow(/options.imageId/);
    expect(() => toCocoDetections([], { imageId: 1, categories: {} as never })).toThrow(
      /array of \{ id, name \} for options.categories/,
    );
    expect(() =>
      toCocoDetections([], {
        imageId: 1,
        categories: [
          { id: 1, name: "cat" },
          { id: 2, name: "cat" },
        ],
      }),
    ).toThrow(/"cat" has two ids \(1 and 2\)/);
  });
});
