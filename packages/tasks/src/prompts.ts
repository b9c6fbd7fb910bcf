/**
 * Prompt builders for the PaliGemma tasks of SPEC §6. Each returns the prompt text only: the "\n" separator,
 * <bos> and the image tokens are added by the tokenizer's prompt layout (SPEC §2.1, §9.11), never here.
 *
 * Which prompts Google documents for which checkpoints is not settled (SPEC §6, "Could not confirm"): one
 * revision of the prompt page marks cap/describe/ocr/question as pretrained-only, the other does not. The
 * builders therefore accept every prompt for every checkpoint; `PROMPT_TASKS` records what the docs say.
 */
import { expectObject, expectOneOf, expectString, InvalidArgumentError, invalid } from "@pali/base";

/** The caption transfer languages of big_vision's coco35l config (SPEC §6); XM3600 adds "quz". */
// biome-ignore format: a table
export const CAPTION_LANGUAGES = [
  "ar", "bn", "cs", "da", "de", "el", "en", "es", "fa", "fi", "fil", "fr", "he", "hi", "hr", "hu", "id", "it",
  "ja", "ko", "mi", "nl", "no", "pl", "pt", "ro", "ru", "sv", "sw", "te", "th", "tr", "uk", "vi", "zh",
] as const;

export type CaptionStyle = "caption" | "cap" | "describe";

/**
 * The documented prompt templates (SPEC §6). `ptOnlyInOneDocRevision`: one revision of Google's prompt page
 * marks the prompt as pretrained-only, the other lists it for every checkpoint. `listInNewerDocRevision`:
 * only the newer revision shows several objects joined by " ; ".
 */
export const PROMPT_TASKS = {
  cap: { template: "cap {lang}", ptOnlyInOneDocRevision: true },
  caption: { template: "caption {lang}", ptOnlyInOneDocRevision: false },
  describe: { template: "describe {lang}", ptOnlyInOneDocRevision: true },
  ocr: { template: "ocr", ptOnlyInOneDocRevision: true },
  answer: { template: "answer {lang} {question}", ptOnlyInOneDocRevision: false },
  question: { template: "question {lang} {answer}", ptOnlyInOneDocRevision: true },
  detect: { template: "detect {object} ; {object}", ptOnlyInOneDocRevision: false },
  segment: { template: "segment {object} ; {object}", ptOnlyInOneDocRevision: false, listInNewerDocRevision: true },
} as const;

export interface CaptionPromptOptions {
  /** Language code, default "en" (see `expectLanguage`). */
  lang?: string;
  /** "caption" (COCO-like, default), "cap" (raw WebLI-alt style) or "describe" (longer). */
  style?: CaptionStyle;
}

export interface LanguageOptions {
  /** Language code, default "en" (see `expectLanguage`). */
  lang?: string;
}

/**
 * A short BCP-47-ish code: 2–3 lowercase letters, optionally one "-" or "_" subtag ("en", "fil", "pt-BR",
 * "zh_Hans"). Codes outside CAPTION_LANGUAGES are accepted because the model may still follow them; the
 * shape check only catches typos and whole words ("English").
 */
const LANGUAGE_RE = /^[a-z]{2,3}([-_][A-Za-z0-9]+)?$/;
/** Location and segmentation token text (SPEC §3), which the tokenizer would read as single tokens. */
const SPECIAL_TOKEN_RE = /<(loc\d{4}|seg\d{3})>/;
const LINE_BREAK_RE = /[\r\n]/;

export function expectLanguage(value: unknown, name = "lang"): string {
  const lang = expectString(value, name);
  if (!LANGUAGE_RE.test(lang)) {
    throw new InvalidArgumentError(
      `Expected a language code such as "en", "fil" or "pt-BR" for ${name} but received ${JSON.stringify(lang)}: ` +
        "use 2–3 lowercase letters with an optional -REGION or _Script part",
    );
  }
  return lang;
}

function optionsObject(value: unknown): Record<string, unknown> {
  return value === undefined ? {} : expectObject(value, "options");
}

function languageOf(options: Record<string, unknown>): string {
  return options.lang === undefined ? "en" : expectLanguage(options.lang, "options.lang");
}

/** Free text inside a prompt (a question, an answer): trimmed, non-empty, on one line. */
function expectPromptText(value: unknown, name: string): string {
  const text = expectString(value, name).trim();
  if (text.length === 0) throw new InvalidArgumentError(`Expected non-empty text for ${name}: write the ${name} to ask about`);
  if (LINE_BREAK_RE.test(text)) {
    // "\n" is the prefix separator (SPEC §2.1, §9.11): one inside the prompt would end it early.
    throw new InvalidArgumentError(
      `${name} contains a line break, which PaliGemma reads as the end of the prompt: join the text into one line`,
    );
  }
  return text;
}

/** A detect/segment label: trimmed, non-empty, free of the characters the output format reserves. */
function expectLabel(value: unknown, name: string): string {
  if (typeof value !== "string") throw invalid("string", name, value);
  const label = value.trim();
  const shown = JSON.stringify(label);
  if (label.length === 0) throw new InvalidArgumentError(`Expected a non-empty label for ${name}: name the object to look for`);
  if (label.includes(";")) {
    throw new InvalidArgumentError(
      `Label ${shown} (${name}) contains ";", which separates labels: pass each object as its own array element`,
    );
  }
  if (LINE_BREAK_RE.test(label)) {
    throw new InvalidArgumentError(
      `Label ${shown} (${name}) contains a line break, which PaliGemma reads as the end of the prompt: use one line`,
    );
  }
  if (SPECIAL_TOKEN_RE.test(label)) {
    throw new InvalidArgumentError(
      `Label ${shown} (${name}) contains <locNNNN>/<segNNN> token text, which would be read as a box coordinate: ` +
        "remove it from the label",
    );
  }
  // The output decoder (SPEC §7) ends a label at "<", ">" or ";": such a label could never be read back.
  if (/[<>]/.test(label)) {
    throw new InvalidArgumentError(
      `Label ${shown} (${name}) contains "<" or ">", which delimit tokens in the model's output: remove them`,
    );
  }
  return label;
}

function expectLabels(value: unknown, task: string): string[] {
  if (typeof value === "string") return [expectLabel(value, "labels")];
  if (!Array.isArray(value)) throw invalid("string or array of strings", "labels", value);
  if (value.length === 0) {
    throw new InvalidArgumentError(`Expected at least one label for ${task} but received an empty array: name an object`);
  }
  return value.map((label, i) => expectLabel(label, `labels[${i}]`));
}

/** `caption en` (or `cap en`, `describe en`). */
export function captionPrompt(options?: CaptionPromptOptions): string {
  const o = optionsObject(options);
  const style =
    o.style === undefined ? "caption" : expectOneOf(o.style, "options.style", ["caption", "cap", "describe"] as const);
  return `${style} ${languageOf(o)}`;
}

/** `ocr`: read the text in the image. */
export function ocrPrompt(): string {
  return "ocr";
}

/** `answer en {question}`: visual question answering. */
export function answerPrompt(question: string, options?: LanguageOptions): string {
  const text = expectPromptText(question, "question");
  return `answer ${languageOf(optionsObject(options))} ${text}`;
}

/** `question en {answer}`: generate a question whose answer is `answer`. */
export function questionPrompt(answer: string, options?: LanguageOptions): string {
  const text = expectPromptText(answer, "answer");
  return `question ${languageOf(optionsObject(options))} ${text}`;
}

/** `detect a ; b ; c`. Labels are trimmed; spaces and any script are fine inside a label. */
export function detectPrompt(labels: string | readonly string[]): string {
  return `detect ${expectLabels(labels, "detect").join(" ; ")}`;
}

/**
 * `segment {expression}`; several objects as `segment a ; b` (the newer prompt-doc revision, SPEC §6).
 * A referring expression ("the cat on the left") is one label.
 */
export function segmentPrompt(expressions: string | readonly string[]): string {
  return `segment ${expectLabels(expressions, "segment").join(" ; ")}`;
}

/** The labels of a detect/segment request, trimmed and checked as the prompt builders do. */
export function normalizeLabels(labels: string | readonly string[]): string[] {
  return expectLabels(labels, "labels");
}
