/** The SigLIP image encoder and projector of an mmproj file, validated and loaded by the native core. */

import {
  AbortError,
  DisposedError,
  expectAbortSignal,
  expectBoolean,
  expectInteger,
  expectNonEmptyString,
  expectObject,
  InvalidArgumentError,
  optional,
  readGGUF,
  throwIfAborted,
} from "@pali/base";
import { type AdapterUse, adapterArrays, checkAdapters } from "./adapters.js";
import { fromNativeError } from "./errors.js";
import { NativeHandle } from "./handle.js";
import { validateLora } from "./model-format/lora.js";
import { validateMmproj } from "./model-format/mmproj.js";
import { loadNative, type NativeVisionModel, type NativeVisionModelInfo } from "./native.js";
import { Tensor } from "./tensor.js";

export interface VisionModelOptions {
  /** Put the weights on the first GPU when there is one (default true). */
  gpu?: boolean;
}

export type VisionModelInfo = NativeVisionModelInfo;

export class VisionModel extends NativeHandle<NativeVisionModel> {
  /** the abort flag of each encode in flight */
  #inFlight = new Set<Int32Array>();
  #disposeWhenIdle = false;

  readonly path: string;
  #adapters = 0;

  private constructor(handle: NativeVisionModel, path: string) {
    super(handle, "VisionModel");
    this.path = path;
  }

  static async load(path: string, options: VisionModelOptions = {}): Promise<VisionModel> {
    expectNonEmptyString(path, "path");
    expectObject(options, "options");
    const useGpu = optional(options.gpu, true, (v) => expectBoolean(v, "gpu"));
    validateMmproj(await readGGUF(path));
    try {
      return new VisionModel(await loadNative().VisionModel.load(path, { useGpu }), path);
    } catch (error) {
      throw fromNativeError(error, `Could not load the vision model ${path}`);
    }
  }

  override get disposed(): boolean {
    return this.#disposeWhenIdle || super.disposed;
  }

  /**
   * Idempotent. Encodes in flight are aborted (they fail with ERR_DISPOSED) and the weights are freed when
   * the last one has stopped; new calls fail with ERR_DISPOSED at once.
   */
  override dispose(): void {
    if (this.#inFlight.size > 0) {
      this.#disposeWhenIdle = true;
      for (const flag of this.#inFlight) flag[0] = 1;
      return;
    }
    super.dispose();
  }

  /**
   * Loads a vision LoRA adapter (pali convert --lora) for this tower, checked against its tensors first;
   * returns the index that encode's `adapters` take. Add adapters before encoding.
   */
  async addAdapter(path: string): Promise<number> {
    this.#checkLive();
    expectNonEmptyString(path, "path");
    validateLora(await readGGUF(path), await readGGUF(this.path));
    try {
      const index = await this.native.addLora(path);
      this.#adapters = index + 1;
      return index;
    } catch (error) {
      throw fromNativeError(error, `Could not load the vision LoRA adapter ${path}`);
    }
  }

  info(): VisionModelInfo {
    this.#checkLive();
    return this.native.info();
  }

  /**
   * Image embeddings for `count` preprocessed images (each [3][S][S], as preprocessImage makes them):
   * a [count, N, D] tensor, computed off the JS thread.
   */
  async encode(
    pixels: Float32Array,
    count = 1,
    options: { threads?: number; signal?: AbortSignal; adapters?: readonly AdapterUse[] } = {},
  ): Promise<Tensor<"f32">> {
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
    const signal = expectAbortSignal(options.signal, "signal");
    const adapters = checkAdapters(options.adapters ?? [], this.#adapters);
    throwIfAborted(signal);
    const out = new Float32Array(count * info.imageTokenCount * info.projectionDim);
    const flag = new Int32Array(1);
    const onAbort = () => {
      flag[0] = 1;
    };
    signal?.addEventListener("abort", onAbort);
    this.#inFlight.add(flag);
    try {
      const { loras, scales } = adapterArrays(adapters);
      await native.encode(pixels, count, threads, out, flag, loras, scales);
    } catch (error) {
      if (this.#disposeWhenIdle) throw new DisposedError("This VisionModel");
      if (signal?.aborted) throw new AbortError("The image encode was aborted", { cause: signal.reason });
      throw fromNativeError(error, "Could not encode the image");
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#inFlight.delete(flag);
      if (this.#inFlight.size === 0 && this.#disposeWhenIdle) super.dispose();
    }
    if (this.#disposeWhenIdle || super.disposed) throw new DisposedError("This VisionModel");
    return Tensor.from("f32", [count, info.imageTokenCount, info.projectionDim], out);
  }

  #checkLive(): void {
    if (this.#disposeWhenIdle) throw new DisposedError("This VisionModel");
  }
}
