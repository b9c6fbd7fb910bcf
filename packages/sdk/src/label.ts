/**
 * Labeling: one task (caption, answer, ocr, detect, segment) over many images, each image's outcome a
 * JSON-safe record. The same records come from `pali label`, from its BullMQ workers and from
 * `pg.labelImages()`, so that a queued run and a local run can be compared line for line.
 */
import {
  expectInteger,
  expectNonEmptyString,
  expectObject,
  expectOneOf,
  InvalidArgumentError,
  optional,
  PaliError,
  throwIfAborted,
} from "@pali/core";
import {
  answerPrompt,
  type Box,
  type CocoRle,
  captionPrompt,
  detectPrompt,
  expectLanguage,
  normalizeLabels,
  ocrPrompt,
  segmentPrompt,
} from "@pali/tasks";
import { decodeImage, type ImageDecoding, type ImageInput, type RawImage } from "./image.js";
import type { PaliGemma } from "./paligemma.js";

export const labelTasks = ["caption", "answer", "ocr", "detect", "segment"] as const;
export type LabelTask = (typeof labelTasks)[number];

export interface LabelSpec {
  task: LabelTask;
  /** answer: the question */
  question?: string;
  /** detect and segment: what to look for ("cat ; dog" or ["cat", "dog"]) */
  labels?: string | readonly string[];
  /** caption and answer: the language code (default en) */
  lang?: string;
  /** caption: `describe` instead of `caption` */
  long?: boolean;
  /** default: the task method's */
  maxTokens?: number;
}

/** A LabelSpec checked once, with the PaliGemma prompt it makes (recorded beside every result). */
export interface LabelPlan {
  task: LabelTask;
  prompt: string;
  question?: string;
  labels?: string[];
  lang?: string;
  long: boolean;
  maxTokens?: number;
}

export interface LabeledBox {
  label: string;
  /** integer pixel box in the original image */
  box: Box;
  /** mean probability of the instance's tokens */
  score?: number;
}

export interface LabeledMask extends LabeledBox {
  /** COCO run-length encoding of the mask at image size */
  rle: CocoRle;
  /** mask pixels */
  area: number;
}

export interface LabelOutput {
  width: number;
  height: number;
  /** the answer (caption/answer/ocr) or the generated text around the instances (detect/segment) */
  text: string;
  detections?: LabeledBox[];
  segmentations?: LabeledMask[];
}

export interface LabelError {
  code: string;
  message: string;
}

export type LabelRecord =
  | { image: string; task: LabelTask; prompt: string; result: LabelOutput }
  | { image: string; task: LabelTask; prompt: string; error: LabelError };

/** An image to label and the name its record carries (a path names itself). */
export type LabelItem = string | { name: string; image: ImageInput };

/** Errors that end a whole run rather than one image's label. */
const fatalCodes = new Set(["ERR_ABORTED", "ERR_DISPOSED", "ERR_UNSUPPORTED_MODEL", "ERR_BACKEND", "ERR_NATIVE_BINARY"]);

export function isFatalLabelError(error: unknown): boolean {
  return !(error instanceof PaliError) || fatalCodes.has(error.code);
}

export function planLabels(spec: LabelSpec): LabelPlan {
  const s = expectObject(spec, "spec");
  const task = expectOneOf(s.task, "spec.task", labelTasks);
  const lang = s.lang === undefined ? undefined : expectLanguage(s.lang, "spec.lang");
  const long = optional(s.long, false, (v) => v === true);
  const maxTokens = s.maxTokens === undefined ? undefined : expectInteger(s.maxTokens, "spec.maxTokens", 1, 4096);
  const langOption = lang ? { lang } : {};
  const base = { task, long, ...langOption, ...(maxTokens === undefined ? {} : { maxTokens }) };
  if ((task === "detect" || task === "segment") === (s.labels === undefined))
    throw new InvalidArgumentError(
      task === "detect" || task === "segment"
        ? `Labeling with ${task} needs labels: what to look for ("cat ; dog")`
        : `Labels are for detect and segment, not ${task}`,
    );
  if ((task === "answer") !== (s.question !== undefined))
    throw new InvalidArgumentError(
      task === "answer" ? "Labeling with answer needs the question" : `A question is for the answer task, not ${task}`,
    );
  if (long && task !== "caption") throw new InvalidArgumentError("long is for the caption task");
  switch (task) {
    case "caption":
      return { ...base, prompt: captionPrompt({ ...langOption, style: long ? "describe" : "caption" }) };
    case "answer": {
      const question = expectNonEmptyString(s.question, "spec.question");
      return { ...base, question, prompt: answerPrompt(question, langOption) };
    }
    case "ocr":
      return { ...base, prompt: ocrPrompt() };
    default: {
      const labels = normalizeLabels(typeof s.labels === "string" ? s.labels.split(";") : (s.labels as string[]));
      return { ...base, labels, prompt: task === "detect" ? detectPrompt(labels) : segmentPrompt(labels) };
    }
  }
}

function recordError(error: unknown): LabelError {
  return error instanceof PaliError
    ? { code: error.code, message: error.message }
    : { code: "ERR_INTERNAL", message: error instanceof Error ? error.message : String(error) };
}

type Labeler = Pick<PaliGemma, "caption" | "ask" | "ocr" | "detect" | "segment">;

/** Runs the plan on one decoded image: the JSON-safe output of the task method. */
export async function labelDecoded(pg: Labeler, image: RawImage, plan: LabelPlan, signal?: AbortSignal): Promise<LabelOutput> {
  const options = { ...(plan.maxTokens === undefined ? {} : { maxTokens: plan.maxTokens }), ...(signal ? { signal } : {}) };
  const lang = plan.lang ? { lang: plan.lang } : {};
  const size = { width: image.width, height: image.height };
  switch (plan.task) {
    case "caption":
      return { ...size, text: (await pg.caption(image, { ...options, ...lang, long: plan.long })).text };
    case "answer":
      return { ...size, text: (await pg.ask(image, plan.question as string, { ...options, ...lang })).text };
    case "ocr":
      return { ...size, text: (await pg.ocr(image, options)).text };
    case "detect": {
      const r = await pg.detect(image, plan.labels as string[], options);
      return {
        ...size,
        text: r.text,
        detections: r.detections.map((d) => ({
          label: d.label,
          box: d.box,
          ...(d.score === undefined ? {} : { score: d.score }),
        })),
      };
    }
    case "segment": {
      const r = await pg.segment(image, plan.labels as string[], options);
      return {
        ...size,
        text: r.text,
        segmentations: r.segmentations.map((s) => ({
          label: s.label,
          box: s.box,
          ...(s.score === undefined ? {} : { score: s.score }),
          rle: s.mask.rle,
          area: s.mask.binary.reduce((a, b) => a + b, 0),
        })),
      };
    }
  }
}

async function decodeItem(item: LabelItem, decoding: ImageDecoding): Promise<RawImage> {
  const rgb = await decodeImage(typeof item === "string" ? item : item.image, decoding.pixelLimit, {
    colorManagement: decoding.colorManagement,
  });
  return { data: rgb.rgb, width: rgb.width, height: rgb.height, channels: 3 };
}

export interface LabelImagesOptions {
  signal?: AbortSignal;
  /** images decoded ahead of the one the model works on (default 2): decoding runs off the JS thread */
  prefetch?: number;
}

/**
 * One record per item, in order. An image that cannot be labeled (not an image, too large, unreadable)
 * gives an error record and the run goes on; a fatal error (abort, disposal, a model that cannot do the
 * task) ends the iteration by throwing.
 */
export async function* labelItems(
  pg: Labeler,
  items: Iterable<LabelItem> | AsyncIterable<LabelItem>,
  plan: LabelPlan,
  decoding: ImageDecoding,
  options: LabelImagesOptions = {},
): AsyncGenerator<LabelRecord> {
  const prefetch = expectInteger(options.prefetch ?? 2, "options.prefetch", 0, 64);
  const { signal } = options;
  const ahead: { name: string; decoded: Promise<RawImage> }[] = [];
  const iterator = (Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]()) as
    | AsyncIterator<LabelItem>
    | Iterator<LabelItem>;
  let exhausted = false;
  const fill = async () => {
    while (!exhausted && ahead.length <= prefetch) {
      const next = await iterator.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      const item = next.value;
      const name = typeof item === "string" ? item : item.name;
      const decoded = decodeItem(item, decoding);
      decoded.catch(() => {}); // read when its turn comes
      ahead.push({ name, decoded });
    }
  };
  const head = { task: plan.task, prompt: plan.prompt };
  while (true) {
    throwIfAborted(signal);
    await fill();
    const current = ahead.shift();
    if (!current) return;
    let record: LabelRecord;
    try {
      const image = await current.decoded;
      record = { image: current.name, ...head, result: await labelDecoded(pg, image, plan, signal) };
    } catch (error) {
      if (isFatalLabelError(error)) throw error;
      record = { image: current.name, ...head, error: recordError(error) };
    }
    yield record;
  }
}

/** The record of one image, with per-image failures as error records (fatal errors are thrown). */
export async function labelOne(
  pg: Labeler,
  item: LabelItem,
  plan: LabelPlan,
  decoding: ImageDecoding,
  signal?: AbortSignal,
): Promise<LabelRecord> {
  const name = typeof item === "string" ? item : item.name;
  const head = { image: name, task: plan.task, prompt: plan.prompt };
  try {
    return { ...head, result: await labelDecoded(pg, await decodeItem(item, decoding), plan, signal) };
  } catch (error) {
    if (isFatalLabelError(error)) throw error;
    return { ...head, error: recordError(error) };
  }
}
