/**
 * Decoding `segment …` output (SPEC §8.1): 4 loc tokens, 16 seg tokens, then the label. The 16 codes go to
 * the VQ-VAE mask decoder (native) and its 64×64 map is placed into `box` by placeMask (mask.ts).
 * An instance with a bad box (see detect.ts), without seg codes, with a count other than 16 or with a code
 * above 127 is dropped with its reason; big_vision's evaluator counts the same cases as invalid (SPEC §7).
 */
import { SEG_CODES, SEG_CODES_PER_MASK } from "./box.js";
import { type Detection, detectionOf, resolveDecodeOptions } from "./detect.js";
import {
  boxProblem,
  type DecodeOptions,
  type DroppedInstance,
  dropped,
  OutputText,
  type RawInstance,
  scanInstances,
} from "./parse.js";
import type { DecoderInput } from "./tokens.js";

export interface Segmentation extends Detection {
  /** the 16 VQ-VAE codebook indices (0..127) in generation order (row-major 4×4, SPEC §8.3) */
  codes: number[];
}

export interface SegmentationResult {
  segmentations: Segmentation[];
  dropped: DroppedInstance[];
  text: string;
}

function maskProblem(raw: RawInstance): [DroppedInstance["reason"], string] | undefined {
  if (raw.segs.length === 0) return ["missing-mask", "no segmentation tokens follow the box"];
  if (raw.segs.length !== SEG_CODES_PER_MASK) {
    return ["mask-length", `expected ${SEG_CODES_PER_MASK} segmentation tokens but found ${raw.segs.length}`];
  }
  const bad = raw.segs.find((v) => v >= SEG_CODES);
  if (bad !== undefined) return ["seg-out-of-range", `segmentation code ${bad} is outside 0..${SEG_CODES - 1}`];
  return undefined;
}

/**
 * Decodes the output of a `segment` prompt into boxes and mask codes. Same input and options as
 * parseDetections; never throws on what the model generated.
 */
export function parseSegmentations(output: DecoderInput, options: DecodeOptions): SegmentationResult {
  const resolved = resolveDecodeOptions(options);
  const out = OutputText.from(output);
  const result: SegmentationResult = { segmentations: [], dropped: [], text: out.text };
  for (const raw of scanInstances(out.text)) {
    const problem = boxProblem(raw) ?? maskProblem(raw);
    if (problem) result.dropped.push(dropped(out, raw, problem[0], problem[1]));
    else result.segmentations.push({ ...detectionOf(out, raw, resolved), codes: raw.segs.slice() });
  }
  return result;
}
