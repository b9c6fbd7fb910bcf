/** GGUF metadata as ggml's own reader sees it: an independent view to check other readers against. */

import { expectNonEmptyString } from "@pali/base";
import { fromNativeError } from "./errors.js";
import { loadNative } from "./native.js";

export interface GgmlGgufKv {
  key: string;
  /** ggml's type name: "u32", "str", "arr", ... */
  type: string;
  /** 64-bit integers arrive as decimal strings; NaN and infinities as "NaN", "Infinity", "-Infinity". */
  value: unknown;
  itemType?: string;
}

export interface GgmlGgufTensor {
  name: string;
  type: string;
  /** four dimensions, unused ones are 1 */
  ne: [number, number, number, number];
  offset: number;
  size: number;
}

export interface GgmlGgufMetadata {
  version: number;
  alignment: number;
  dataOffset: number;
  kv: GgmlGgufKv[];
  tensors: GgmlGgufTensor[];
}

/** Reads a GGUF file's metadata with ggml's gguf reader. Only for files already validated. */
export async function readGgufWithGgml(path: string): Promise<GgmlGgufMetadata> {
  expectNonEmptyString(path, "path");
  try {
    return JSON.parse(await loadNative().ggufMetadataJson(path)) as GgmlGgufMetadata;
  } catch (error) {
    throw fromNativeError(error, `ggml could not read ${path}`);
  }
}
