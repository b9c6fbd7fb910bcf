/**
 * PaliGemma's tasks as typed results: @pali/tasks builds the prompts and reads the answers, the model and
 * (for segmentation) the mask decoder compute them.
 */
import { type MaskDecoder, Tensor, UnsupportedModelError } from "@pali/core";
import {
  answerPrompt,
  captionPrompt,
  type Detection,
  detectPrompt,
  encodeRle,
  type OutputToken,
  ocrPrompt,
  parseDetections,
  parseSegmentations,
  parseText,
  placeMask,
  type Segmentation,
  segmentPrompt,
} from "@pali/tasks";
import type { Tokenizer } from "@pali/tokenizer";
import { decodeImage, type ImageDecoding, type ImageInput } from "./image.js";
import type { Images } from "./multi-image.js";
import type { GenerateRequest } from "./options.js";
import type { GenerateResult } from "./paligemma.js";

/** Generation options a task method passes through (the prompt is the task's). */
export type TaskOptions = Omit<GenerateRequest, "image" | "prompt"> & {
  /** original image size, needed when `image` is an encodeImage() tensor (boxes are in original pixels) */
  imageWidth?: number;
  imageHeight?: number;
};

export interface TextResult {
  text: string;
  result: GenerateResult;
}

export interface DetectResult {
  detections: Detection[];
  text: string;
  result: GenerateResult;
}

export interface SegmentMask {
  width: number;
  height: number;
  /** 0..1 at image size */
  soft: Float32Array;
  /** 0/1 at image size (the decoder's output thresholded at 0, as big_vision's evaluator) */
  binary: Uint8Array;
  /** COCO run-length encoding of `binary` */
  rle: { size: [number, number]; counts: number[] };
}

export type SegmentInstance = Segmentation & { mask: SegmentMask };

export interface SegmentResult {
  segmentations: SegmentInstance[];
  text: string;
  result: GenerateResult;
}

export interface TaskHost {
  readonly tokenizer: Tokenizer;
  generate(request: GenerateRequest): Promise<GenerateResult>;
  encodeImage(image: ImageInput, options?: { signal?: AbortSignal }): Promise<Tensor<"f32">>;
  readonly maskDecoder: MaskDecoder | undefined;
  readonly decoding: ImageDecoding;
}

/** The generated tokens with the text each one completes and its probability, for the decoders. */
function outputTokens(host: TaskHost, result: GenerateResult): OutputToken[] {
  const decoder = host.tokenizer.createStreamDecoder();
  return result.tokens.map((id, i) => ({ id, text: decoder.push(id), prob: Math.exp(result.logprobs[i] as number) }));
}

/** Decodes the image once: the pixels feed the encoder, the size places boxes. */
async function prepare(host: TaskHost, image: ImageInput | Tensor<"f32">, options: TaskOptions) {
  if (image instanceof Tensor) {
    if (options.imageWidth === undefined || options.imageHeight === undefined) {
      throw new UnsupportedModelError(
        "Pass imageWidth and imageHeight with image embeddings: boxes are placed in original-image pixels",
      );
    }
    return { input: image, width: options.imageWidth, height: options.imageHeight };
  }
  const rgb = await decodeImage(image, host.decoding.pixelLimit, { colorManagement: host.decoding.colorManagement });
  return {
    input: { data: rgb.rgb, width: rgb.width, height: rgb.height, channels: 3 as const },
    width: rgb.width,
    height: rgb.height,
  };
}

function request(options: TaskOptions): Omit<GenerateRequest, "image" | "prompt"> {
  const { imageWidth: _w, imageHeight: _h, ...rest } = options;
  return rest;
}

export async function runTextTask(host: TaskHost, image: Images, prompt: string, options: TaskOptions): Promise<TextResult> {
  const result = await host.generate({ ...request(options), image, prompt });
  return { text: parseText(outputTokens(host, result)), result };
}

export function captionTask(host: TaskHost, image: Images, options: TaskOptions & { lang?: string; long?: boolean } = {}) {
  const { lang, long, ...rest } = options;
  return runTextTask(host, image, captionPrompt({ ...(lang ? { lang } : {}), style: long ? "describe" : "caption" }), rest);
}

export function askTask(host: TaskHost, image: Images, question: string, options: TaskOptions & { lang?: string } = {}) {
  const { lang, ...rest } = options;
  return runTextTask(host, image, answerPrompt(question, lang ? { lang } : {}), rest);
}

export function ocrTask(host: TaskHost, image: Images, options: TaskOptions = {}) {
  return runTextTask(host, image, ocrPrompt(), options);
}

export async function detectTask(
  host: TaskHost,
  image: ImageInput | Tensor<"f32">,
  labels: string | readonly string[],
  options: TaskOptions = {},
): Promise<DetectResult> {
  const prompt = detectPrompt(labels);
  const { input, width, height } = await prepare(host, image, options);
  const result = await host.generate({ maxTokens: 256, ...request(options), image: input, prompt });
  const parsed = parseDetections(outputTokens(host, result), {
    imageWidth: width,
    imageHeight: height,
    labels: typeof labels === "string" ? [labels] : [...labels],
  });
  return { detections: parsed.detections, text: parsed.text, result };
}

export async function segmentTask(
  host: TaskHost,
  image: ImageInput | Tensor<"f32">,
  expression: string | readonly string[],
  options: TaskOptions = {},
): Promise<SegmentResult> {
  const decoder = host.maskDecoder;
  if (!decoder) {
    throw new UnsupportedModelError(
      "Segmentation needs the mask decoder: convert big_vision's vae-oid.npz with `pali convert --seg-vae vae-oid.npz -o DIR` and put DIR/mask-decoder-f32.gguf beside the model, or pass it (pali --mask-decoder FILE, SDK maskDecoder: FILE)",
    );
  }
  const prompt = segmentPrompt(expression);
  const { input, width, height } = await prepare(host, image, options);
  const result = await host.generate({ maxTokens: 256, ...request(options), image: input, prompt });
  const parsed = parseSegmentations(outputTokens(host, result), {
    imageWidth: width,
    imageHeight: height,
    labels: typeof expression === "string" ? [expression] : [...expression],
  });
  const masks = parsed.segmentations.length > 0 ? await decoder.decode(parsed.segmentations.map((s) => s.codes)) : [];
  const segmentations = parsed.segmentations.map((s, i) => {
    const placed = placeMask(masks[i] as Float32Array, s.box, { imageWidth: width, imageHeight: height });
    return { ...s, mask: { ...placed, rle: encodeRle(placed.binary, width, height) } };
  });
  return { segmentations, text: parsed.text, result };
}
