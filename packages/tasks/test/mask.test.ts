/**
 * Mask placement (SPEC §8.4, big_vision evaluator path): PIL-style float bilinear resize into the box,
 * threshold at 0. Checked by hand on small images and against a direct 2-D reference written here.
 */
import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "@pali/base";
import { describe, expect, it } from "vitest";
import { MASK_SIZE, placeMask, resizeBilinear } from "../src/index.js";

/**
 * Reference: out(x, y) = Σ_i Σ_j wy(y, i) · wx(x, j) · in(i, j), in double precision, where w(o, i) is the
 * triangle filter at (i + 0.5 − (o + 0.5)·s) / max(s, 1), s = in/out, normalized over all input pixels.
 */
function referenceResize(src: ArrayLike<number>, w: number, h: number, ow: number, oh: number): Float64Array {
  const weights = (inSize: number, outSize: number, o: number): Float64Array => {
    const s = inSize / outSize;
    const f = Math.max(s, 1);
    const c = (o + 0.5) * s;
    const k = new Float64Array(inSize);
    let total = 0;
    for (let i = 0; i < inSize; i++) {
      k[i] = Math.max(0, 1 - Math.abs((i + 0.5 - c) / f));
      total += k[i] as number;
    }
    return k.map((v) => v / total);
  };
  const out = new Float64Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    const wy = weights(h, oh, y);
    for (let x = 0; x < ow; x++) {
      const wx = weights(w, ow, x);
      let sum = 0;
      for (let i = 0; i < h; i++)
        for (let j = 0; j < w; j++) sum += (wy[i] as number) * (wx[j] as number) * (src[i * w + j] as number);
      out[y * ow + x] = sum;
    }
  }
  return out;
}

/** Deterministic values in [-1, 1) (mulberry32). */
function random(seed: number, n: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

describe("resizeBilinear (PIL BILINEAR, mode F)", () => {
  it("upsamples 2 → 4 with half-pixel centres and clamped edges", () => {
    // centres 0.25, 0.75, 1.25, 1.75 over input centres 0.5, 1.5: [a, ¾a + ¼b, ¼a + ¾b, b]
    expect(Array.from(resizeBilinear(new Float32Array([1, -1]), 2, 1, 4, 1))).toEqual([1, 0.5, -0.5, -1]);
  });

  it("downsamples 4 → 2 with the widened (antialiasing) triangle", () => {
    // scale 2, support 2: output 0 weighs inputs 0, 1, 2 by ¾, ¾, ¼ → 3/7, 3/7, 1/7; output 1 inputs 1, 2, 3
    const out = resizeBilinear(new Float32Array([1, 2, 3, 4]), 4, 1, 2, 1);
    expect(out[0]).toBeCloseTo(12 / 7, 6);
    expect(out[1]).toBeCloseTo(23 / 7, 6);
  });

  it("resizes 2×2 → 3×3 in both directions", () => {
    // centres 1/3, 1, 5/3: edge pixels copy, the middle averages its two neighbours
    const out = resizeBilinear(new Float32Array([0, 1, 2, 4]), 2, 2, 3, 3);
    expect(Array.from(out)).toEqual([0, 0.5, 1, 1, 1.75, 2.5, 2, 3, 4]);
  });

  it("matches the direct reference for up, down, mixed and odd sizes", () => {
    const src = random(7, MASK_SIZE * MASK_SIZE);
    for (const [ow, oh] of [
      [200, 150],
      [20, 37],
      [100, 10],
      [1, 1],
      [65, 63],
      [64, 64],
      [3, 300],
    ] as const) {
      const out = resizeBilinear(src, MASK_SIZE, MASK_SIZE, ow, oh);
      expect(out.length).toBe(ow * oh);
      expect(maxDiff(out, referenceResize(src, MASK_SIZE, MASK_SIZE, ow, oh))).toBeLessThan(2e-6);
    }
  });

  it("equals Pillow's own output bit for bit (fixtures/make_pil_resize.py)", () => {
    const meta = JSON.parse(readFileSync(new URL("fixtures/pil-resize.json", import.meta.url), "utf8")) as {
      sizes: [number, number][];
    };
    const bytes = readFileSync(new URL("fixtures/pil-resize.bin", import.meta.url));
    const expected = new Float32Array(Uint8Array.from(bytes).buffer); // copied: a Buffer may sit unaligned in a pool
    const src = new Float32Array(MASK_SIZE * MASK_SIZE);
    for (let i = 0; i < MASK_SIZE; i++) {
      for (let j = 0; j < MASK_SIZE; j++) src[i * MASK_SIZE + j] = Math.fround((((i * 37 + j * 11 + i * j) % 101) - 50) / 40);
    }
    let offset = 0;
    for (const [w, h] of meta.sizes) {
      const out = resizeBilinear(src, MASK_SIZE, MASK_SIZE, w, h);
      expect(Array.from(out)).toEqual(Array.from(expected.subarray(offset, offset + w * h)));
      offset += w * h;
    }
    expect(offset).toBe(expected.length);
  });

  it("returns a copy at the same size and validates its input", () => {
    const src = random(3, 12);
    const out = resizeBilinear(src, 4, 3, 4, 3);
    expect(out).toEqual(src);
    expect(out).not.toBe(src);
    expect(() => resizeBilinear(src, 4, 4, 2, 2)).toThrow(/Expected 4×4 = 16 values for src but received 12/);
    expect(() => resizeBilinear(src, 4, 3, 0, 2)).toThrow(InvalidArgumentError);
    expect(() => resizeBilinear([1, 2] as never, 2, 1, 1, 1)).toThrow(/Expected Float32Array for src/);
  });
});

describe("placeMask", () => {
  it("places a horizontal ramp into a box twice as wide (hand-computed)", () => {
    // m(i, j) = (j − 31.5) / 31.5; upsampled ×2 in x, column x of the box reads input position (x + ½)/2 − ½.
    const mask = new Float32Array(MASK_SIZE * MASK_SIZE);
    for (let i = 0; i < MASK_SIZE; i++) for (let j = 0; j < MASK_SIZE; j++) mask[i * MASK_SIZE + j] = (j - 31.5) / 31.5;
    const box = { x1: 10, y1: 20, x2: 138, y2: 84 };
    const placed = placeMask(mask, box, { imageWidth: 200, imageHeight: 100 });
    expect([placed.width, placed.height, placed.soft.length, placed.binary.length]).toEqual([200, 100, 20000, 20000]);
    for (const y of [20, 50, 83]) {
      for (let x = 0; x < 128; x++) {
        const position = Math.min(Math.max((x + 0.5) / 2 - 0.5, 0), 63);
        const v = (position - 31.5) / 31.5;
        expect(placed.soft[y * 200 + 10 + x]).toBeCloseTo(0.5 * v + 0.5, 6);
        // v > 0 ⇔ position > 31.5 ⇔ x ≥ 64
        expect(placed.binary[y * 200 + 10 + x]).toBe(x >= 64 ? 1 : 0);
      }
    }
    expect(placed.soft[20 * 200 + 10]).toBe(0); // column 0 copies −1 → 0
    expect(placed.soft[20 * 200 + 137]).toBe(1); // last column copies 1
    // nothing outside the box
    let outside = 0;
    for (let y = 0; y < 100; y++) {
      for (let x = 0; x < 200; x++) {
        const inBox = x >= 10 && x < 138 && y >= 20 && y < 84;
        if (!inBox) outside += (placed.soft[y * 200 + x] as number) + (placed.binary[y * 200 + x] as number);
      }
    }
    expect(outside).toBe(0);
    let ones = 0;
    for (const b of placed.binary) ones += b;
    expect(ones).toBe(64 * 64);
  });

  it("agrees with the reference: soft = clip(½v + ½), binary = v > 0", () => {
    const mask = random(11, MASK_SIZE * MASK_SIZE).map((v) => 1.3 * v); // beyond ±1, as the decoder may give
    const box = { x1: 3, y1: 5, x2: 48, y2: 97 };
    const placed = placeMask(mask, box, { imageWidth: 50, imageHeight: 100 });
    const ref = referenceResize(mask, MASK_SIZE, MASK_SIZE, 45, 92);
    let checked = 0;
    for (let y = 0; y < 92; y++) {
      for (let x = 0; x < 45; x++) {
        const v = ref[y * 45 + x] as number;
        const i = (y + 5) * 50 + x + 3;
        expect(Math.abs((placed.soft[i] as number) - Math.min(Math.max(0.5 * v + 0.5, 0), 1))).toBeLessThan(2e-6);
        if (Math.abs(v) > 1e-5) {
          expect(placed.binary[i]).toBe(v > 0 ? 1 : 0);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(4000);
  });

  it("gives empty masks for an empty box, and a full mask for a full-image box", () => {
    const ones = new Float32Array(MASK_SIZE * MASK_SIZE).fill(0.25);
    const empty = placeMask(ones, { x1: 5, y1: 5, x2: 5, y2: 9 }, { imageWidth: 10, imageHeight: 10 });
    expect(empty.binary.every((v) => v === 0)).toBe(true);
    expect(empty.soft.every((v) => v === 0)).toBe(true);
    const full = placeMask(ones, { x1: 0, y1: 0, x2: 7, y2: 3 }, { imageWidth: 7, imageHeight: 3 });
    expect(full.binary.every((v) => v === 1)).toBe(true);
    expect(full.soft.every((v) => v === 0.625)).toBe(true);
  });

  it("validates mask, box and size", () => {
    const ok = new Float32Array(MASK_SIZE * MASK_SIZE);
    const size = { imageWidth: 10, imageHeight: 10 };
    expect(() => placeMask(new Float32Array(10), { x1: 0, y1: 0, x2: 1, y2: 1 }, size)).toThrow(/Float32Array of 64×64 values/);
    expect(() => placeMask(ok, { x1: 0, y1: 0, x2: 11, y2: 1 }, size)).toThrow(
      /integer between 0 and 10 for box.x2 but received 11/,
    );
    expect(() => placeMask(ok, { x1: 0.5, y1: 0, x2: 1, y2: 1 }, size)).toThrow(/box.x1/);
    expect(() => placeMask(ok, { x1: 0, y1: 0, x2: 1, y2: 1 }, { imageWidth: 10 } as never)).toThrow(/options.imageHeight/);
  });
});
