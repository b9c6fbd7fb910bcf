/**
 * Location tokens to boxes (SPEC §7 and "Decisions for pali"): `<locDDDD>` holds DDDD in 0..1023, in the order
 * y1, x1, y2, x2; the normalized coordinate is DDDD / 1024 (the Hugging Face demo convention, not big_vision's
 * /1023) and the pixel coordinate is that times the original image height or width, rounded half to even as
 * Python's round() does.
 */

/** Number of location bins: `<loc0000>`..`<loc1023>`. */
export const LOC_BINS = 1024;
/** Number of segmentation codes: `<seg000>`..`<seg127>`. */
export const SEG_CODES = 128;
/** Segmentation codes per object. */
export const SEG_CODES_PER_MASK = 16;

export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** Raw location values in output order: [y1, x1, y2, x2], each 0..1023. */
export type LocValues = [y1: number, x1: number, y2: number, x2: number];

/** Python's round(): to the nearest integer, ties to even. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Normalized [0, 1) box of raw loc values. Exact: v / 1024 is a dyadic fraction. */
export function normalizedBox(loc: LocValues): Box {
  return { x1: loc[1] / LOC_BINS, y1: loc[0] / LOC_BINS, x2: loc[3] / LOC_BINS, y2: loc[2] / LOC_BINS };
}

/** Integer pixel box in an image of the given original size (before the square resize of SPEC §4). */
export function pixelBox(loc: LocValues, imageWidth: number, imageHeight: number): Box {
  // (v / 1024) · W is exact in binary floating point, so the tie cases round exactly as Python does.
  return {
    x1: roundHalfEven((loc[1] / LOC_BINS) * imageWidth),
    y1: roundHalfEven((loc[0] / LOC_BINS) * imageHeight),
    x2: roundHalfEven((loc[3] / LOC_BINS) * imageWidth),
    y2: roundHalfEven((loc[2] / LOC_BINS) * imageHeight),
  };
}
