/** The SigLIP image encoder and projector of an mmproj file, validated and loaded by the native core. */
import { DisposedError, fromNativeError, InvalidArgumentError } from "./errors.js";
import { readGGUF } from "./gguf/reader.js";
import { NativeHandle } from "./handle.js";
import { validateMmproj } from "./model-format/mmproj.js";
import { loadNative, type NativeVisionModel, type NativeVisionModelInfo } from "./native.js";
import { Tensor } from "./tensor.js";
import { expectBoolean, expectInteger, expectNonEmptyString, expectObject, optional } from "./validate.js";

export interface VisionModelOptions {
  /** Put the weights on the first GPU when there is one (default true). */
  gpu?: boolean;
}

export type VisionModelInfo = NativeVisionModelInfo;

export class VisionModel extends NativeHandle<NativeVisionModel> {
  #inFlight = 0;
  #disposeWhenIdle = false;

  private constructor(handle: NativeVisionModel) {
    super(handle, "VisionModel");
  }

  static async load(path: string, options: VisionModelOptions = {}): Promise<VisionModel> {
    expectNonEmptyString(path, "path");
    expectObject(options, "options");
    const useGpu = optional(options.gpu, true, (v) => expectBoolean(v, "gpu"));
    validateMmproj(await readGGUF(path));
    try {
      return new VisionModel(await loadNative().VisionModel.load(path, { useGpu }));
    } catch (error) {
      throw fromNativeError(error, `Could not load the vision model ${path}`);
    }
  }

  override get disposed(): boolean {
    return this.#disposeWhenIdle || super.disposed;
  }

  /**
   * Idempotent. An encode still running keeps the weights until it ends and then fails with ERR_DISPOSED
   * (the native handle refuses to free weights in use); new calls fail with ERR_DISPOSED at once.
   */
  override dispose(): void {
    if (this.#inFlight > 0) {
      this.#disposeWhenIdle = true;
      return;
    }
    super.dispose();
  }

  info(): VisionModelInfo {
    this.#checkLive();
    return this.native.info();
  }

  /**
   * Image embeddings for `count` preprocessed images (each [3][S][S], as preprocessImage makes them):
   * a [count, N, D] tensor, computed off the JS thread.
   */
  async encode(pixels: Float32Array, count = 1, options: { threads?: number } = {}): Promise<Tensor<"f32">> {
    this.#checkLive();
    const native = this.native;
    const info = native.info();
    const size = info.imageSize;
    expectInteger(count, "count", 1, 1024);
    if (!(pixels instanceof Float32Array) || pixels.length !== count * 3 * size * size) {
      throw new InvalidArgumentError(
        `Expected ${count} image(s) of 3×${size}×${size} floats (${count * 3 * size * size}) for pixels`,
      );
    }
    const threads = optional(options.threads, 0, (v) => expectInteger(v, "threads", 0, 1024));
    const out = new Float32Array(count * info.imageTokenCount * info.projectionDim);
    this.#inFlight++;
    try {
      await native.encode(pixels, count, threads, out);
    } catch (error) {
      if (this.#disposeWhenIdle) throw new DisposedError("This VisionModel");
      throw fromNativeError(error, "Could not encode the image");
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0 && this.#disposeWhenIdle) super.dispose();
    }
    if (this.#disposeWhenIdle || super.disposed) throw new DisposedError("This VisionModel");
    return Tensor.from("f32", [count, info.imageTokenCount, info.projectionDim], out);
  }

  #checkLive(): void {
    if (this.#disposeWhenIdle) throw new DisposedError("This VisionModel");
  }
}
