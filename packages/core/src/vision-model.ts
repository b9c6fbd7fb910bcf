/** The SigLIP image encoder and projector of an mmproj file, validated and loaded by the native core. */
import { fromNativeError } from "./errors.js";
import { NativeHandle } from "./handle.js";
import { loadNative, type NativeVisionModel, type NativeVisionModelInfo } from "./native.js";
import { expectBoolean, expectNonEmptyString, expectObject, optional } from "./validate.js";

export interface VisionModelOptions {
  /** Put the weights on the first GPU when there is one (default true). */
  gpu?: boolean;
}

export type VisionModelInfo = NativeVisionModelInfo;

export class VisionModel extends NativeHandle<NativeVisionModel> {
  private constructor(handle: NativeVisionModel) {
    super(handle, "VisionModel");
  }

  static async load(path: string, options: VisionModelOptions = {}): Promise<VisionModel> {
    expectNonEmptyString(path, "path");
    expectObject(options, "options");
    const useGpu = optional(options.gpu, true, (v) => expectBoolean(v, "gpu"));
    try {
      return new VisionModel(await loadNative().VisionModel.load(path, { useGpu }));
    } catch (error) {
      throw fromNativeError(error, `Could not load the vision model ${path}`);
    }
  }

  info(): VisionModelInfo {
    return this.native.info();
  }
}
