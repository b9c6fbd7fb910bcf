/**
 * The segmentation VQ-VAE decoder (SPEC §8): 16 `<segNNN>` codes → a 64×64 float mask, computed by the
 * native core in float32 from `mask-decoder-f32.gguf` (made by `pali convert --seg-vae vae-oid.npz`).
 */
import {
  DisposedError,
  expectBoolean,
  expectInteger,
  expectNonEmptyString,
  expectObject,
  invalid,
  optional,
  readGGUF,
} from "@pali/base";
import { fromNativeError } from "./errors.js";
import { NativeHandle } from "./handle.js";
import { validateMaskDecoderFile } from "./model-format/mask-decoder.js";
import { loadNative, type NativeMaskDecoder, type NativeMaskDecoderInfo } from "./native.js";

export interface MaskDecoderOptions {
  /** Put the weights on the first GPU when there is one (default true). */
  gpu?: boolean;
}

export interface MaskDecodeOptions {
  /** CPU threads (0: pali's default) */
  threads?: number;
}

export type MaskDecoderInfo = NativeMaskDecoderInfo;

/** Most masks one decode() call takes (each costs about 0.1 GFLOP). */
export const MAX_MASKS_PER_CALL = 4096;

export class MaskDecoder extends NativeHandle<NativeMaskDecoder> {
  #inFlight = 0;
  #disposeWhenIdle = false;

  private constructor(handle: NativeMaskDecoder) {
    super(handle, "MaskDecoder");
  }

  static async load(path: string, options: MaskDecoderOptions = {}): Promise<MaskDecoder> {
    expectNonEmptyString(path, "path");
    expectObject(options, "options");
    const useGpu = optional(options.gpu, true, (v) => expectBoolean(v, "gpu"));
    validateMaskDecoderFile(await readGGUF(path));
    try {
      return new MaskDecoder(await loadNative().MaskDecoder.load(path, { useGpu }));
    } catch (error) {
      throw fromNativeError(error, `Could not load the mask decoder ${path}`);
    }
  }

  override get disposed(): boolean {
    return this.#disposeWhenIdle || super.disposed;
  }

  /** Idempotent. A decode still running keeps the weights until it ends; new calls fail with ERR_DISPOSED. */
  override dispose(): void {
    if (this.#inFlight > 0) {
      this.#disposeWhenIdle = true;
      return;
    }
    super.dispose();
  }

  info(): MaskDecoderInfo {
    this.#checkLive();
    return this.native.info();
  }

  /**
   * Decodes code sequences (each `tokenCount` = 16 integers in 0..codebookSize-1, the `<segNNN>` numbers in
   * generation order) into masks of maskSize × maskSize = 64 × 64 floats, row-major (row 0 at the top): the
   * raw decoder output, about −1..1, where > 0 is inside the object (SPEC §8.4). The arrays are views into
   * one buffer. Runs off the JS thread.
   */
  async decode(
    codes: readonly (readonly number[] | ArrayLike<number>)[],
    options: MaskDecodeOptions = {},
  ): Promise<Float32Array[]> {
    this.#checkLive();
    const native = this.native;
    const info = native.info();
    if (!Array.isArray(codes)) throw invalid("array of code sequences", "codes", codes);
    if (codes.length > MAX_MASKS_PER_CALL) throw invalid(`at most ${MAX_MASKS_PER_CALL} code sequences`, "codes", codes);
    expectObject(options, "options");
    const threads = optional(options.threads, 0, (v) => expectInteger(v, "threads", 0, 1024));
    const n = codes.length;
    const t = info.tokenCount;
    const flat = new Int32Array(n * t);
    for (let i = 0; i < n; i++) {
      const row: unknown = codes[i];
      if (
        !(Array.isArray(row) || (ArrayBuffer.isView(row) && !(row instanceof DataView))) ||
        (row as ArrayLike<number>).length !== t
      ) {
        throw invalid(`array of ${t} integers`, `codes[${i}]`, row);
      }
      for (let j = 0; j < t; j++)
        flat[i * t + j] = expectInteger((row as ArrayLike<unknown>)[j], `codes[${i}][${j}]`, 0, info.codebookSize - 1);
    }
    if (n === 0) return [];
    const pixels = info.maskSize * info.maskSize;
    const out = new Float32Array(n * pixels);
    this.#inFlight++;
    try {
      await native.decode(flat, n, out, threads);
    } catch (error) {
      throw fromNativeError(error, "Could not decode the masks");
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0 && this.#disposeWhenIdle) super.dispose();
    }
    return Array.from({ length: n }, (_, i) => out.subarray(i * pixels, (i + 1) * pixels));
  }

  #checkLive(): void {
    if (this.#disposeWhenIdle) throw new DisposedError("This MaskDecoder");
  }
}
