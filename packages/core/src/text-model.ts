/** The Gemma / Gemma 2 decoder as libllama loads it: immutable weights, shareable. */

import { expectBoolean, expectInteger, expectNonEmptyString, expectObject, expectString, optional, readGGUF } from "@pali/base";
import { fromNativeError } from "./errors.js";
import { NativeHandle } from "./handle.js";
import { validateDecoder } from "./model-format/decoder.js";
import { validateLora } from "./model-format/lora.js";
import { loadNative, type NativeTextModel, type NativeTextModelInfo } from "./native.js";

export interface TextModelOptions {
  /** Layers to offload to a GPU when one is present; -1 (default) offloads all. */
  gpuLayers?: number;
  /** Memory-map the weights (default true). */
  useMmap?: boolean;
}

export type TextModelInfo = NativeTextModelInfo;

export class TextModel extends NativeHandle<NativeTextModel> {
  readonly path: string;

  private constructor(handle: NativeTextModel, path: string) {
    super(handle, "TextModel");
    this.path = path;
  }

  static async load(path: string, options: TextModelOptions = {}): Promise<TextModel> {
    expectNonEmptyString(path, "path");
    expectObject(options, "options");
    const gpuLayers = optional(options.gpuLayers, -1, (v) => expectInteger(v, "gpuLayers", -1));
    const useMmap = optional(options.useMmap, true, (v) => expectBoolean(v, "useMmap"));
    // Everything libllama would assert on is refused here first, as a typed error.
    validateDecoder(await readGGUF(path));
    try {
      return new TextModel(await loadNative().TextModel.load(path, { gpuLayers, useMmap }), path);
    } catch (error) {
      throw fromNativeError(error, `Could not load the text model ${path}`);
    }
  }

  /**
   * Loads a decoder LoRA adapter (pali convert --lora) for this model, checked against its tensors first;
   * returns the index that Context.setAdapters takes. Add adapters before creating contexts.
   */
  async addAdapter(path: string): Promise<number> {
    expectNonEmptyString(path, "path");
    validateLora(await readGGUF(path), await readGGUF(this.path));
    try {
      return await this.native.addLora(path);
    } catch (error) {
      throw fromNativeError(error, `Could not load the LoRA adapter ${path}`);
    }
  }

  info(): TextModelInfo {
    return this.native.info();
  }

  /**
   * libllama's own tokenization (no BOS/EOS added). pali tokenizes with @pali/tokenizer; this is the
   * independent check that both agree.
   */
  tokenize(text: string, options: { parseSpecial?: boolean } = {}): number[] {
    expectString(text, "text");
    const parseSpecial = optional(options.parseSpecial, false, (v) => expectBoolean(v, "parseSpecial"));
    return Array.from(this.native.tokenize(text, parseSpecial));
  }

  /** The native handle, for code that builds on it in this workspace (the SDK's contexts). */
  get handle(): NativeTextModel {
    return this.native;
  }

  /** A metadata value as libllama stores it (stringified), or undefined when the key is absent. */
  meta(key: string): string | undefined {
    return this.native.meta(expectNonEmptyString(key, "key"));
  }
}
