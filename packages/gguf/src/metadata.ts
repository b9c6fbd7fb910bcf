/** Convenience accessors and a summary of a GGUF file's contents. */
import { type GGUFFile, type GGUFValue, getString } from "@pali/base";

export { getNumber, getString } from "@pali/base";

/** The plain JS value of a metadata entry (typed arrays and bigints as they are). */
export function metadataValue(value: GGUFValue): unknown {
  return value.value;
}

export interface GGUFSummary {
  architecture: string | undefined;
  name: string | undefined;
  tensorCount: number;
  /** bytes of tensor data */
  tensorBytes: number;
  parameterCount: number;
  /** tensors per ggml type, e.g. { q8_0: 120, f32: 37 } */
  tensorTypes: Record<string, number>;
}

export function summarize(file: GGUFFile): GGUFSummary {
  const tensorTypes: Record<string, number> = {};
  let tensorBytes = 0;
  let parameterCount = 0;
  for (const t of file.tensors) {
    tensorTypes[t.type.name] = (tensorTypes[t.type.name] ?? 0) + 1;
    tensorBytes += t.byteSize;
    parameterCount += t.elementCount;
  }
  return {
    architecture: getString(file, "general.architecture"),
    name: getString(file, "general.name"),
    tensorCount: file.tensors.length,
    tensorBytes,
    parameterCount,
    tensorTypes,
  };
}

/** A JSON-safe form of a metadata value: bigints as strings, long arrays elided past `maxItems`. */
export function metadataToJson(value: GGUFValue, maxItems = Number.POSITIVE_INFINITY): unknown {
  const scalar = (v: unknown): unknown =>
    typeof v === "bigint" ? v.toString() : typeof v === "number" && !Number.isFinite(v) ? String(v) : v;
  if (value.type !== "arr") return scalar(value.value);
  const items = Array.from(value.value as ArrayLike<unknown>);
  if (items.length <= maxItems) return items.map(scalar);
  return { type: value.itemType, length: items.length, first: items.slice(0, maxItems).map(scalar) };
}
