/**
 * The scanner shared by the detection and segmentation decoders. It reads the format of SPEC §7 / §8.1,
 *   <locY1><locX1><locY2><locX2>[<segA>…<segP>] label ; <loc…>…
 * in the spirit of the Hugging Face demo's regular expression, but without ever throwing or silently
 * misreading: every run of location tokens becomes either an instance or a "partial" record.
 *  - Location tokens are `<loc>` + 4 digits, seg tokens `<seg>` + 3 digits; both must be adjacent within
 *    their run (the model never puts anything between them). Whitespace may come after the locs and
 *    after the segs.
 *  - A run of adjacent locs is cut into groups of 4 from its start, as the demo's regex does. Every full
 *    group but the last has no label; a remainder of 1–3 locs is a partial instance, and the segs and label
 *    after the run belong to it.
 *  - The label is the text up to the next ";", "<" or ">" (the demo's `[^;<>]`), trimmed. Text elsewhere
 *    (before the first box, between " ; " separators, a trailing "<eos>") is not part of any instance.
 * Values are not range-checked here; the decoders do that and report what they drop.
 */
import { OutputText, type Range } from "./tokens.js";

const TOKEN_RE = /<loc(\d{4})>|<seg(\d{3})>/g;
const LABEL_STOP = new Set([";", "<", ">"]);

interface Mark {
  kind: "loc" | "seg";
  value: number;
  start: number;
  end: number;
}

export interface RawInstance {
  /** false when the run held fewer than 4 locs */
  complete: boolean;
  /** the raw loc values (4 when complete, 1–3 otherwise), possibly out of range */
  locs: number[];
  /** the raw seg values that follow the locs (any count, possibly out of range) */
  segs: number[];
  label: string;
  /** character range of the whole instance: first loc to the end of the trimmed label (or last token) */
  start: number;
  end: number;
}

function isSpace(ch: string | undefined): boolean {
  return ch !== undefined && /\s/.test(ch);
}

function skipSpaces(text: string, pos: number): number {
  let p = pos;
  while (isSpace(text[p])) p++;
  return p;
}

function marksOf(text: string): Mark[] {
  const marks: Mark[] = [];
  for (const m of text.matchAll(TOKEN_RE)) {
    const start = m.index;
    const end = start + m[0].length;
    if (m[1] !== undefined) marks.push({ kind: "loc", value: Number(m[1]), start, end });
    else marks.push({ kind: "seg", value: Number(m[2]), start, end });
  }
  return marks;
}

export function scanInstances(text: string): RawInstance[] {
  const marks = marksOf(text);
  const out: RawInstance[] = [];
  let i = 0;
  while (i < marks.length) {
    const first = marks[i] as Mark;
    if (first.kind !== "loc") {
      i++; // a seg code outside any instance: noise
      continue;
    }
    // The run of adjacent locs.
    let j = i + 1;
    while (j < marks.length && (marks[j] as Mark).kind === "loc" && (marks[j] as Mark).start === (marks[j - 1] as Mark).end) j++;
    const run = marks.slice(i, j);
    const tail = run.length % 4;
    const groups: Mark[][] = [];
    for (let g = 0; g + 4 <= run.length; g += 4) groups.push(run.slice(g, g + 4));
    if (tail > 0) groups.push(run.slice(run.length - tail));
    // Every group but the last stands alone (no segs, no label).
    for (let g = 0; g < groups.length - 1; g++) {
      const group = groups[g] as Mark[];
      out.push({
        complete: true,
        locs: group.map((m) => m.value),
        segs: [],
        label: "",
        start: (group[0] as Mark).start,
        end: (group[group.length - 1] as Mark).end,
      });
    }
    const last = groups[groups.length - 1] as Mark[];
    let end = (last[last.length - 1] as Mark).end;
    // Adjacent seg codes, after optional whitespace.
    const segs: number[] = [];
    let pos = skipSpaces(text, end);
    while (j < marks.length && (marks[j] as Mark).kind === "seg" && (marks[j] as Mark).start === pos) {
      const seg = marks[j] as Mark;
      segs.push(seg.value);
      end = seg.end;
      pos = seg.end;
      j++;
    }
    // The label, after optional whitespace, up to ";", "<", ">" or the end.
    pos = skipSpaces(text, end);
    let stop = pos;
    while (stop < text.length && !LABEL_STOP.has(text[stop] as string)) stop++;
    let labelEnd = stop;
    while (labelEnd > pos && isSpace(text[labelEnd - 1])) labelEnd--;
    if (labelEnd > pos) end = labelEnd;
    out.push({
      complete: last.length === 4,
      locs: last.map((m) => m.value),
      segs,
      label: text.slice(pos, labelEnd),
      start: (last[0] as Mark).start,
      end,
    });
    // Resume at the first mark after this instance (a "<" ends a label, so nothing inside it is skipped).
    while (j < marks.length && (marks[j] as Mark).start < end) j++;
    i = j;
  }
  return out;
}

/** Why an instance was left out of the results. */
export type DropReason =
  | "partial-box" // fewer than 4 loc tokens
  | "loc-out-of-range" // a loc value above 1023
  | "empty-box" // y2 <= y1 or x2 <= x1
  | "missing-mask" // segmentation: no seg tokens
  | "mask-length" // segmentation: not exactly 16 seg tokens
  | "seg-out-of-range"; // segmentation: a seg value above 127

export interface DroppedInstance {
  reason: DropReason;
  /** what was wrong, in words */
  message: string;
  /** the text of the instance as generated */
  text: string;
  textRange: Range;
  tokenRange?: Range;
}

export interface DecodeOptions {
  /** original image width in pixels (before the square resize) */
  imageWidth: number;
  /** original image height in pixels */
  imageHeight: number;
  /**
   * The labels that were asked for (as passed to detectPrompt/segmentPrompt). When given, every result
   * carries `known`: whether its label is one of them (after trimming). Unknown labels are kept.
   */
  labels?: readonly string[];
}

/** Where an instance sits in the output, and its mean token probability when the tokens carry one. */
export interface Placement {
  textRange: Range;
  tokenRange?: Range;
  score?: number;
}

export function placementOf(output: OutputText, raw: RawInstance): Placement {
  const textRange: Range = [raw.start, raw.end];
  const tokenRange = output.tokenRange(raw.start, raw.end);
  if (tokenRange === undefined) return { textRange };
  const score = output.meanProbability(tokenRange);
  return score === undefined ? { textRange, tokenRange } : { textRange, tokenRange, score };
}

export function dropped(output: OutputText, raw: RawInstance, reason: DropReason, message: string): DroppedInstance {
  const textRange: Range = [raw.start, raw.end];
  const record: DroppedInstance = { reason, message, text: output.text.slice(raw.start, raw.end), textRange };
  const tokenRange = output.tokenRange(raw.start, raw.end);
  if (tokenRange !== undefined) record.tokenRange = tokenRange;
  return record;
}

/** The box checks shared by both decoders (SPEC §7, last bullet: big_vision's validity rule). */
export function boxProblem(raw: RawInstance): [DropReason, string] | undefined {
  if (!raw.complete) return ["partial-box", `expected 4 location tokens but found ${raw.locs.length}`];
  const bad = raw.locs.find((v) => v > 1023);
  if (bad !== undefined) return ["loc-out-of-range", `location value ${bad} is outside 0..1023`];
  const [y1, x1, y2, x2] = raw.locs as [number, number, number, number];
  if (y2 <= y1 || x2 <= x1) return ["empty-box", `the box has y1=${y1}, x1=${x1}, y2=${y2}, x2=${x2}: y2 <= y1 or x2 <= x1`];
  return undefined;
}

export { OutputText };
