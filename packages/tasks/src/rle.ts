/**
 * COCO run-length encoding, uncompressed form: `{ size: [height, width], counts }`, where counts are run
 * lengths over the mask in column-major (Fortran) order, alternating 0s and 1s and starting with a run of
 * 0s (which may be 0 long). Masks elsewhere in pali are row-major, so the encoder walks columns.
 */
import { expectInteger, expectObject, expectPositiveInteger, InvalidArgumentError, invalid } from "@pali/base";

export interface CocoRle {
  /** [height, width], as COCO writes it */
  size: [height: number, width: number];
  counts: number[];
}

/** Encodes a row-major binary mask (any non-zero value counts as 1). */
export function encodeRle(mask: Uint8Array, width: number, height: number): CocoRle {
  if (!(mask instanceof Uint8Array)) throw invalid("Uint8Array", "mask", mask);
  expectPositiveInteger(width, "width");
  expectPositiveInteger(height, "height");
  if (mask.length !== width * height) {
    throw new InvalidArgumentError(
      `Expected ${width}×${height} = ${width * height} values for mask but received ${mask.length}: pass the mask's width and height`,
    );
  }
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let i = x; i < mask.length; i += width) {
      const v = mask[i] === 0 ? 0 : 1;
      if (v !== current) {
        counts.push(run);
        current = v;
        run = 0;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [height, width], counts };
}

/** Decodes an uncompressed COCO RLE into a row-major 0/1 mask of size[1] × size[0]. */
export function decodeRle(rle: CocoRle): Uint8Array {
  const r = expectObject(rle, "rle");
  if (!Array.isArray(r.size) || r.size.length !== 2) throw invalid("[height, width]", "rle.size", r.size);
  const height = expectInteger(r.size[0], "rle.size[0]", 0);
  const width = expectInteger(r.size[1], "rle.size[1]", 0);
  if (!Array.isArray(r.counts)) throw invalid("array of run lengths", "rle.counts", r.counts);
  const total = width * height;
  const mask = new Uint8Array(total);
  let pos = 0;
  for (let k = 0; k < r.counts.length; k++) {
    const run = expectInteger(r.counts[k], `rle.counts[${k}]`, 0);
    if (pos + run > total) {
      throw new InvalidArgumentError(`rle.counts add up to more than ${height}×${width} pixels: the RLE does not fit its size`);
    }
    if (k % 2 === 1) {
      // column-major position p is row p % height, column ⌊p / height⌋
      for (let p = pos; p < pos + run; p++) mask[(p % height) * width + Math.floor(p / height)] = 1;
    }
    pos += run;
  }
  if (pos !== total) {
    throw new InvalidArgumentError(`rle.counts add up to ${pos} pixels but size is ${height}×${width}: the RLE is incomplete`);
  }
  return mask;
}

/** Number of 1 pixels of an RLE: the sum of the odd runs. */
export function rleArea(rle: CocoRle): number {
  let area = 0;
  for (let k = 1; k < rle.counts.length; k += 2) area += rle.counts[k] as number;
  return area;
}
