/** The encoder's input: an 8-bit RGB image resized and normalized off the JS thread (PIL-exact bicubic, SPEC §4). */
import { expectInteger, InvalidArgumentError } from "@pali/base";
import { fromNativeError } from "./errors.js";
import { loadNative } from "./native.js";

/** [3][size][size] floats in [-1, 1] from row-major RGB bytes, as transformers' SiglipImageProcessor makes them. */
export async function resizeAndNormalize(rgb: Uint8Array, width: number, height: number, size: number): Promise<Float32Array> {
  expectInteger(width, "width", 1, 1 << 20);
  expectInteger(height, "height", 1, 1 << 20);
  expectInteger(size, "size", 1, 1 << 14);
  if (!(rgb instanceof Uint8Array) || rgb.length !== width * height * 3) {
    throw new InvalidArgumentError(`Expected ${width * height * 3} bytes of RGB for a ${width}×${height} image`);
  }
  const out = new Float32Array(3 * size * size);
  try {
    await loadNative().preprocessImage(rgb, width, height, size, out);
  } catch (error) {
    throw fromNativeError(error, "Could not preprocess the image");
  }
  return out;
}
