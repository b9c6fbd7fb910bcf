/**
 * Images in: any common format (sharp decodes; EXIF orientation applied; alpha dropped, grey replicated,
 * CMYK naively inverted, embedded ICC profiles ignored — all as transformers' load_image + PIL's
 * convert("RGB") does), raw RGB/RGBA buffers, file paths. Then the PIL-exact bicubic resize and
 * normalization in native code.
 */
import {
  expectInteger,
  expectObject,
  expectOneOf,
  ImageDecodeError,
  InvalidArgumentError,
  optional,
  resizeAndNormalize,
} from "@pali/core";
import sharp from "sharp";

/** Raw pixels: `channels` bytes a pixel, row-major. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3 | 4;
}

/** A file path, encoded image bytes (JPEG, PNG, WebP, AVIF, GIF, TIFF, HEIF where sharp supports it), or raw pixels. */
export type ImageInput = string | Uint8Array | RawImage;

export interface RgbImage {
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** sharp's default: refuses images over about 268 megapixels before decoding them. */
export const DEFAULT_PIXEL_LIMIT = 0x3fff * 0x3fff;

/**
 * "stored" (default): the pixel values as stored, ignoring an embedded ICC profile, as transformers and
 * big_vision feed PaliGemma. "convert": colour-managed conversion to sRGB through the embedded profile
 * (CMYK without one through sharp's built-in CMYK profile), as a browser would show the image.
 */
export type ColorManagement = "stored" | "convert";

export interface DecodeOptions {
  colorManagement?: ColorManagement;
}

/** How a loaded model decodes the images it is given (LoadOptions pixelLimit and colorManagement). */
export interface ImageDecoding {
  pixelLimit: number;
  colorManagement: ColorManagement;
}

function isRaw(input: unknown): input is RawImage {
  return typeof input === "object" && input !== null && !(input instanceof Uint8Array) && "data" in input;
}

/** PIL's cmyk2rgb: c·(255−k)/255 by its integer rounding, exact over all (c, k) against Pillow 12. */
function cmykToRgb(cmyk: Uint8Array, channels: number): Uint8Array {
  const rgb = new Uint8Array((cmyk.length / channels) * 3);
  for (let p = 0, q = 0; q < rgb.length; p += channels, q += 3) {
    const nk = 255 - (cmyk[p + 3] as number);
    for (let c = 0; c < 3; c++) {
      const t = (cmyk[p + c] as number) * nk + 128;
      rgb[q + c] = nk - ((t + (t >> 8)) >> 8);
    }
  }
  return rgb;
}

export async function decodeImage(
  input: ImageInput,
  pixelLimit = DEFAULT_PIXEL_LIMIT,
  options: DecodeOptions = {},
): Promise<RgbImage> {
  const colorManagement = optional(expectObject(options, "decode options").colorManagement, "stored", (v) =>
    expectOneOf(v, "colorManagement", ["stored", "convert"] as const),
  );
  if (isRaw(input)) {
    const width = expectInteger(input.width, "image.width", 1, 1 << 20);
    const height = expectInteger(input.height, "image.height", 1, 1 << 20);
    if (input.channels !== 3 && input.channels !== 4)
      throw new InvalidArgumentError(`Expected 3 or 4 for image.channels but received ${String(input.channels)}`);
    if (width * height > pixelLimit)
      throw new ImageDecodeError(
        `The image has ${width}×${height} pixels, more than the limit of ${pixelLimit}; pass a smaller image or raise pixelLimit`,
      );
    if (!(input.data instanceof Uint8Array) || input.data.length !== width * height * input.channels) {
      throw new InvalidArgumentError(
        `Expected ${width * height * input.channels} bytes of image.data for a ${width}×${height} image with ${input.channels} channels`,
      );
    }
    if (input.channels === 3) return { rgb: input.data, width, height };
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
      rgb[i] = input.data[j] as number;
      rgb[i + 1] = input.data[j + 1] as number;
      rgb[i + 2] = input.data[j + 2] as number;
    }
    return { rgb, width, height };
  }
  if (typeof input !== "string" && !(input instanceof Uint8Array)) {
    throw new InvalidArgumentError("Expected a file path, image bytes or { data, width, height, channels } for image");
  }
  try {
    const stored = colorManagement === "stored";
    const image = sharp(input, { limitInputPixels: pixelLimit, failOn: "error", pages: 1, ignoreIcc: stored });
    // Why: even with ignoreIcc, sharp turns CMYK into sRGB through its own CMYK profile; PIL (and TF's
    // decode_jpeg) invert the stored inks instead, so keep CMYK through the pipeline and invert here.
    if (stored && (await image.metadata()).space === "cmyk") {
      const { data, info } = await image
        .pipelineColourspace("cmyk")
        .rotate()
        .toColourspace("cmyk")
        .raw({ depth: "uchar" })
        .toBuffer({ resolveWithObject: true });
      if (info.channels < 4) throw new ImageDecodeError(`Decoded CMYK image has ${info.channels} channels, expected 4`);
      return { rgb: cmykToRgb(data, info.channels), width: info.width, height: info.height };
    }
    const { data, info } = await image
      .rotate()
      .toColourspace("srgb")
      .removeAlpha()
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new ImageDecodeError(`Decoded image has ${info.channels} channels, expected 3`);
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (cause) {
    if (cause instanceof ImageDecodeError) throw cause;
    const what = typeof input === "string" ? input : `${input.length} bytes`;
    throw new ImageDecodeError(
      `Could not decode the image (${what}): ${(cause as Error).message}. Pass a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIF image, or raw RGB pixels.`,
      { cause },
    );
  }
}

/** [3][size][size] floats in [-1, 1], exactly as transformers' PIL-backed SiglipImageProcessor makes them. */
export function preprocessImage(image: RgbImage, size: number): Promise<Float32Array> {
  return resizeAndNormalize(image.rgb, image.width, image.height, size);
}
