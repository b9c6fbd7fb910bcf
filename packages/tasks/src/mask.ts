/**
 * Placing a decoded 64×64 mask into the image (SPEC §8.4, the big_vision evaluator path chosen in "Decisions
 * for pali"): the raw float map (nominally −1..1) is resized into the box with PIL's BILINEAR filter on a
 * mode "F" image, and thresholded at > 0. The soft mask is the same resized map mapped by clip(0.5·v + 0.5,
 * 0, 1); outside the box both masks are 0. An empty box (x2 <= x1 or y2 <= y1) gives empty masks, as the
 * demo produces no mask for it.
 *
 * PIL's BILINEAR is a separable triangle filter with pixel centres at i + 0.5, renormalized at the borders
 * and widened by the scale factor when shrinking (so a box smaller than 64 px averages, not samples).
 * It runs horizontally first, storing the intermediate image as float32, then vertically, accumulating in
 * double: all as Pillow's Resample.c does, so results match `Image.fromarray(m).resize(size, BILINEAR)`.
 */
import { expectInteger, expectObject, expectPositiveInteger, InvalidArgumentError, invalid } from "@pali/base";
import type { Box } from "./box.js";

/** Side of the VQ-VAE decoder's output map (SPEC §8.3). */
export const MASK_SIZE = 64;

interface Coefficients {
  ksize: number;
  /** per output index: first input index and number of taps */
  bounds: Int32Array;
  weights: Float64Array;
}

function triangle(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}

/** Pillow's precompute_coeffs() for the bilinear filter (support 1). */
function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Float64Array(outSize * ksize);
  const inverse = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates towards zero.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const taps = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    for (let x = 0; x < taps; x++) {
      const w = triangle((x + xmin - center + 0.5) * inverse);
      weights[xx * ksize + x] = w;
      total += w;
    }
    if (total !== 0) for (let x = 0; x < taps; x++) weights[xx * ksize + x] = (weights[xx * ksize + x] as number) / total;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = taps;
  }
  return { ksize, bounds, weights };
}

function horizontal(src: Float32Array, width: number, height: number, outWidth: number): Float32Array {
  const { ksize, bounds, weights } = coefficients(width, outWidth);
  const out = new Float32Array(outWidth * height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = bounds[xx * 2] as number;
      const taps = bounds[xx * 2 + 1] as number;
      let sum = 0;
      for (let x = 0; x < taps; x++) sum += (src[row + xmin + x] as number) * (weights[xx * ksize + x] as number);
      out[y * outWidth + xx] = sum;
    }
  }
  return out;
}

function vertical(src: Float32Array, width: number, height: number, outHeight: number): Float32Array {
  const { ksize, bounds, weights } = coefficients(height, outHeight);
  const out = new Float32Array(width * outHeight);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[yy * 2] as number;
    const taps = bounds[yy * 2 + 1] as number;
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let y = 0; y < taps; y++) sum += (src[(ymin + y) * width + x] as number) * (weights[yy * ksize + y] as number);
      out[yy * width + x] = sum;
    }
  }
  return out;
}

/**
 * Resizes a row-major float image with PIL's BILINEAR filter (mode "F"). Returns a new array of
 * outWidth × outHeight values; the same size returns a copy, as PIL does.
 */
export function resizeBilinear(
  src: Float32Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
): Float32Array {
  if (!(src instanceof Float32Array)) throw invalid("Float32Array", "src", src);
  expectPositiveInteger(width, "width");
  expectPositiveInteger(height, "height");
  expectPositiveInteger(outWidth, "outWidth");
  expectPositiveInteger(outHeight, "outHeight");
  if (src.length !== width * height) {
    throw new InvalidArgumentError(
      `Expected ${width}×${height} = ${width * height} values for src but received ${src.length}: pass width and height of src`,
    );
  }
  let image: Float32Array = src.slice();
  if (outWidth !== width) image = horizontal(image, width, height, outWidth);
  if (outHeight !== height) image = vertical(image, outWidth, height, outHeight);
  return image;
}

export interface PlaceMaskOptions {
  imageWidth: number;
  imageHeight: number;
}

export interface PlacedMask {
  width: number;
  height: number;
  /** row-major width × height, clip(0.5·v + 0.5, 0, 1) inside the box, 0 outside */
  soft: Float32Array;
  /** row-major width × height, 1 where the resized map is > 0 (inside the box), else 0 */
  binary: Uint8Array;
}

function expectBox(value: unknown, width: number, height: number): Box {
  const b = expectObject(value, "box");
  return {
    x1: expectInteger(b.x1, "box.x1", 0, width),
    y1: expectInteger(b.y1, "box.y1", 0, height),
    x2: expectInteger(b.x2, "box.x2", 0, width),
    y2: expectInteger(b.y2, "box.y2", 0, height),
  };
}

/**
 * Places a 64×64 mask-decoder map into `box` (integer pixels of the original image, as Detection.box gives
 * it) and returns the soft and binary masks at full image size.
 */
export function placeMask(mask64: Float32Array, box: Box, options: PlaceMaskOptions): PlacedMask {
  if (!(mask64 instanceof Float32Array) || mask64.length !== MASK_SIZE * MASK_SIZE) {
    throw invalid(`Float32Array of ${MASK_SIZE}×${MASK_SIZE} values`, "mask64", mask64);
  }
  const o = expectObject(options, "options");
  const width = expectPositiveInteger(o.imageWidth, "options.imageWidth");
  const height = expectPositiveInteger(o.imageHeight, "options.imageHeight");
  const { x1, y1, x2, y2 } = expectBox(box, width, height);
  const soft = new Float32Array(width * height);
  const binary = new Uint8Array(width * height);
  if (x2 <= x1 || y2 <= y1) return { width, height, soft, binary };
  const boxWidth = x2 - x1;
  const resized = resizeBilinear(mask64, MASK_SIZE, MASK_SIZE, boxWidth, y2 - y1);
  for (let y = y1; y < y2; y++) {
    const from = (y - y1) * boxWidth;
    const to = y * width + x1;
    for (let x = 0; x < boxWidth; x++) {
      const v = resized[from + x] as number;
      soft[to + x] = Math.min(Math.max(0.5 * v + 0.5, 0), 1);
      binary[to + x] = v > 0 ? 1 : 0;
    }
  }
  return { width, height, soft, binary };
}
