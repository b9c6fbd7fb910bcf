/**
 * Images into requests: base64 or a data: URL in JSON, a multipart upload, or (only when the server allows
 * it) an http(s) URL that the server fetches. Decoded once, here, with the server's pixel limit; the SDK
 * gets raw pixels, so the image size that places boxes is the size that was decoded.
 */
import { InvalidArgumentError } from "@pali/core";
import { decodeImage, type PaliGemma, type RawImage } from "@pali/sdk";
import { ServerError, ServerErrorCode } from "./errors.js";

export interface ImagePolicy {
  allowRemote: boolean;
  /** the most bytes of a fetched image (the body limit) */
  maxBytes: number;
  pixelLimit: number;
}

// Standard and URL-safe alphabets; Buffer.from would silently skip anything else.
const base64Text = /^[A-Za-z0-9+/_-]*={0,2}$/;

function fromBase64(text: string, name: string): Buffer {
  const compact = text.replace(/\s+/g, "");
  if (compact.length === 0 || compact.length % 4 === 1 || !base64Text.test(compact))
    throw new InvalidArgumentError(
      `Expected base64 image bytes or a data: URL (data:image/png;base64,...) for ${name} but it is not valid base64`,
    );
  return Buffer.from(compact, "base64");
}

/** The encoded image bytes that `source` names. */
export async function imageBytes(
  source: string | Buffer,
  policy: ImagePolicy,
  signal: AbortSignal,
  name = "image",
): Promise<Uint8Array> {
  if (typeof source !== "string") return source;
  const text = source.trim();
  if (/^data:/i.test(text)) {
    const comma = text.indexOf(",");
    if (comma < 0 || !/;base64$/i.test(text.slice(5, comma)))
      throw new InvalidArgumentError(`Expected a base64 data: URL (data:image/png;base64,...) for ${name}`);
    return fromBase64(text.slice(comma + 1), name);
  }
  if (/^https?:\/\//i.test(text)) {
    if (!policy.allowRemote)
      throw new ServerError(
        400,
        ServerErrorCode.RemoteImagesDisabled,
        `This server does not fetch image URLs (${name}); send the image as base64 or a data: URL, or start the server with --allow-remote-images`,
      );
    return fetchImage(text, policy.maxBytes, signal);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text);
  if (scheme)
    throw new InvalidArgumentError(`Expected base64, a data: URL or an http(s) URL for ${name} but received a ${scheme[1]}: URL`);
  return fromBase64(text, name);
}

async function fetchImage(url: string, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  const failed = (message: string, cause?: unknown) =>
    new ServerError(400, ServerErrorCode.RemoteImage, `Could not fetch the image at ${url}: ${message}`, { cause });
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: "follow" });
  } catch (cause) {
    if (signal.aborted) throw signal.reason;
    throw failed((cause as Error).message, cause);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw failed(`HTTP ${response.status}`);
  }
  const tooLarge = () =>
    new ServerError(413, ServerErrorCode.PayloadTooLarge, `The image at ${url} is larger than the limit of ${maxBytes} bytes`);
  if (Number(response.headers.get("content-length") ?? 0) > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body?.getReader();
  try {
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxBytes) throw tooLarge();
      chunks.push(value);
    }
  } catch (error) {
    await reader?.cancel().catch(() => {});
    if (error instanceof ServerError) throw error;
    if (signal.aborted) throw signal.reason;
    throw failed((error as Error).message, error);
  }
  return Buffer.concat(chunks);
}

/**
 * Decoded RGB pixels, as the model decodes images (its colour management; the lower of its and the server's
 * pixel limits): ERR_IMAGE_DECODE for what is not an image (415) or has too many pixels (413).
 */
export async function decodeUpload(bytes: Uint8Array, pixelLimit: number, pg: PaliGemma): Promise<RawImage> {
  const model = pg.imageDecoding;
  const rgb = await decodeImage(bytes, Math.min(pixelLimit, model.pixelLimit), { colorManagement: model.colorManagement });
  return { data: rgb.rgb, width: rgb.width, height: rgb.height, channels: 3 };
}
