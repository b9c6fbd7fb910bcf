/**
 * Several images in one prompt (NLVR2 pairs, video frames), laid out as transformers' PaliGemmaProcessor lays
 * them out: k images give `<image>` × (N·k), then `<bos>`, the prompt and "\n"; the decoder reads the k
 * encodings one after another (transformers scatters the features of pixel_values [k, 3, S, S] into the
 * placeholders in order). The prefix stays one bidirectional block, so the native prefill needs nothing
 * more than the k·N rows.
 */
import { ContextOverflowError, InvalidArgumentError, type Tensor } from "@pali/core";
import type { ImageInput } from "./image.js";

/** An image, or its embeddings from encodeImage() */
export type ImageElement = ImageInput | Tensor<"f32">;

/** One image, or several read in order in one prompt (at most LoadOptions.maxImages) */
export type Images = ImageElement | readonly ImageElement[];

function expectImage(image: unknown, name: string): void {
  if (image === undefined || image === null)
    throw new InvalidArgumentError(
      `Expected an image (path, bytes, raw pixels or encodeImage() result) for ${name} but received nothing`,
    );
}

/** Request validation: an image, or a non-empty array of them. */
export function validateImages(image: unknown): void {
  if (!Array.isArray(image)) {
    expectImage(image, "image");
    return;
  }
  if (image.length === 0)
    throw new InvalidArgumentError("Expected at least one image in the image array but received an empty array");
  for (const [i, one] of image.entries()) expectImage(one, `image[${i}]`);
}

/** The request's images as a list, at most `maxImages` of them (the load option the prefix batch is sized for). */
export function imageList(image: Images, maxImages: number): readonly ImageElement[] {
  if (!Array.isArray(image)) return [image as ImageElement];
  if (image.length > maxImages) {
    throw new InvalidArgumentError(
      `Expected at most ${maxImages} image${maxImages === 1 ? "" : "s"} in one request (load with maxImages: ${image.length} or more) but received ${image.length}`,
    );
  }
  return image;
}

/** An encodeImage() tensor of this model: [N, D] f32. */
export function checkEmbeddings(image: Tensor, imageTokens: number, embeddingLength: number): Float32Array {
  const [n, d] = image.shape;
  if (image.dtype !== "f32" || n !== imageTokens || d !== embeddingLength || image.shape.length !== 2) {
    throw new InvalidArgumentError(
      `Expected image embeddings of shape [${imageTokens}, ${embeddingLength}] (from this model's encodeImage) but received [${image.shape.join(", ")}]`,
    );
  }
  return (image as Tensor<"f32">).data;
}

/** The k encodings as one [k·N, D] buffer, in the order of the images (one image: its own buffer, no copy). */
export function concatEmbeddings(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0] as Float32Array;
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * ERR_CONTEXT_OVERFLOW when the image tokens and `text` positions (the prefix text, and a suffix when scoring) do
 * not fit the context, saying how many positions this many images need. Two more are kept: positions start at
 * 1, and the first answer token needs one.
 */
export function checkPositions(
  o: { imageTokens: number; perImage: number; text: number; contextSize: number },
  text: string,
): void {
  const need = o.imageTokens + o.text;
  if (need + 2 <= o.contextSize) return;
  const k = o.imageTokens / o.perImage;
  const images = k === 1 ? "The image" : `${k} images (${k} × ${o.perImage} image tokens)`;
  throw new ContextOverflowError(
    `${images} and ${text} need ${need} positions but the context holds ${o.contextSize}; load with a contextSize of at least ${need + 2}${k === 1 ? " or shorten the prompt" : ", or pass fewer images"}`,
  );
}
