/** The Gemma / Gemma 2 decoder as libllama loads it: immutable weights, shareable. */
import { DisposedError, fromNativeError } from "./errors.js";
import { loadNative, type NativeTextModel, type NativeTextModelInfo } from "./native.js";
import { expectBoolean, expectInteger, expectNonEmptyString, expectObject, optional } from "./validate.js";

export interface TextModelOptions {
  /** Layers to offload to a GPU when one is present; -1 (default) offloads all. */
  gpuLayers?: number;
  /** Memory-map the weights (default true). */
  useMmap?: boolean;
}

export type TextModelInfo = NativeTextModelInfo;

const registry = new FinalizationRegistry<NativeTextModel>((handle) => handle.dispose());

export class TextModel {
  #handle: NativeTextModel | undefined;

  private constructor(handle: NativeTextModel) {
    this.#handle = handle;
    registry.register(this, handle, this);
  }

  static async load(path: string, options: TextModelOptions = {}): Promise<TextModel> {
    expectNonEmptyString(path, "path");
    expectObject(options, "options");
    const gpuLayers = optional(options.gpuLayers, -1, (v) => expectInteger(v, "gpuLayers", -1));
    const useMmap = optional(options.useMmap, true, (v) => expectBoolean(v, "useMmap"));
    try {
      return new TextModel(await loadNative().TextModel.load(path, { gpuLayers, useMmap }));
    } catch (error) {
      throw fromNativeError(error, `Could not load the text model ${path}`);
    }
  }

  get disposed(): boolean {
    return this.#handle === undefined;
  }

  info(): TextModelInfo {
    return this.#live().info();
  }

  /** A metadata value as libllama stores it (stringified), or undefined when the key is absent. */
  meta(key: string): string | undefined {
    return this.#live().meta(expectNonEmptyString(key, "key"));
  }

  dispose(): void {
    if (!this.#handle) return;
    registry.unregister(this);
    this.#handle.dispose();
    this.#handle = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  #live(): NativeTextModel {
    if (!this.#handle) throw new DisposedError("This TextModel");
    return this.#handle;
  }
}
