/**
 * Decoding `detect …` output (SPEC §7) into boxes in original-image pixels.
 * Instances are never silently lost: each one the scanner finds is either a detection or a dropped record
 * with a reason (fewer than 4 locs, a loc above 1023, y2 <= y1 or x2 <= x1: big_vision's validity rule).
 */
import { expectObject, expectPositiveInteger, expectString, invalid } from "@pali/base";
import { type Box, type LocValues, normalizedBox, pixelBox } from "./box.js";
import {
  boxProblem,
  type DecodeOptions,
  type DroppedInstance,
  dropped,
  OutputText,
  placementOf,
  type RawInstance,
  scanInstances,
} from "./parse.js";
import type { DecoderInput, Range } from "./tokens.js";

export interface Detection {
  /** the generated label, trimmed; "" when the model wrote none */
  label: string;
  /** whether `label` is one of `options.labels`; present only when labels were given */
  known?: boolean;
  /** integer pixel box in the original image: loc / 1024 × size, rounded half to even */
  box: Box;
  /** the same box in [0, 1): loc / 1024 */
  normalized: Box;
  /** the raw location values as generated: [y1, x1, y2, x2], each 0..1023 */
  loc: LocValues;
  /** [start, end) of the instance (first loc to the end of the label) in the output text */
  textRange: Range;
  /** [start, end) of the instance's tokens, when the output came as tokens */
  tokenRange?: Range;
  /** mean probability of the instance's tokens, when the tokens carry probabilities (see boxConfidence) */
  score?: number;
}

export interface DetectionResult {
  detections: Detection[];
  /** instances that could not be read as a valid box, with the reason */
  dropped: DroppedInstance[];
  /** the output text that was decoded */
  text: string;
}

export interface ResolvedDecodeOptions {
  imageWidth: number;
  imageHeight: number;
  labels: Set<string> | undefined;
}

export function resolveDecodeOptions(options: unknown): ResolvedDecodeOptions {
  const o = expectObject(options, "options");
  const imageWidth = expectPositiveInteger(o.imageWidth, "options.imageWidth");
  const imageHeight = expectPositiveInteger(o.imageHeight, "options.imageHeight");
  let labels: Set<string> | undefined;
  if (o.labels !== undefined) {
    if (!Array.isArray(o.labels)) throw invalid("array of strings", "options.labels", o.labels);
    labels = new Set(o.labels.map((label, i) => expectString(label, `options.labels[${i}]`).trim()));
  }
  return { imageWidth, imageHeight, labels };
}

/** The fields every decoded box has; the box must already have passed boxProblem(). */
export function detectionOf(output: OutputText, raw: RawInstance, options: ResolvedDecodeOptions): Detection {
  const loc = raw.locs as LocValues;
  const detection: Detection = {
    label: raw.label,
    box: pixelBox(loc, options.imageWidth, options.imageHeight),
    normalized: normalizedBox(loc),
    loc: [loc[0], loc[1], loc[2], loc[3]],
    ...placementOf(output, raw),
  };
  if (options.labels !== undefined) detection.known = options.labels.has(raw.label);
  return detection;
}

/**
 * Decodes the output of a `detect` prompt. `output` is the generated text (anything after the prompt; a
 * trailing "<eos>" is fine) or the generated tokens with their decoded text and, optionally, probabilities.
 * Output without location tokens (e.g. an empty string) gives no detections. Seg codes after a box (output
 * of a `segment` prompt) are skipped over; their tokens count towards tokenRange and score.
 */
export function parseDetections(output: DecoderInput, options: DecodeOptions): DetectionResult {
  const resolved = resolveDecodeOptions(options);
  const out = OutputText.from(output);
  const result: DetectionResult = { detections: [], dropped: [], text: out.text };
  for (const raw of scanInstances(out.text)) {
    const problem = boxProblem(raw);
    if (problem) result.dropped.push(dropped(out, raw, problem[0], problem[1]));
    else result.detections.push(detectionOf(out, raw, resolved));
  }
  return result;
}
