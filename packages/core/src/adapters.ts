/** LoRA adapters as the native calls take them: indices from addAdapter, with scales. */
import { expectFiniteNumber, expectInteger, InvalidArgumentError } from "@pali/base";

/** An adapter that a computation applies: its index (from TextModel/VisionModel.addAdapter) and scale. */
export interface AdapterUse {
  index: number;
  scale: number;
}

/** Checks indices against the `loaded` count and scales for finiteness. */
export function checkAdapters(adapters: readonly AdapterUse[], loaded: number): readonly AdapterUse[] {
  if (!Array.isArray(adapters)) throw new InvalidArgumentError("Expected an array for adapters");
  if (adapters.length > 0 && loaded === 0) throw new InvalidArgumentError("No LoRA adapter is loaded on this model");
  for (const a of adapters) {
    expectInteger(a?.index, "adapter index", 0, loaded - 1);
    expectFiniteNumber(a.scale, "adapter scale");
  }
  return adapters;
}

export function adapterArrays(adapters: readonly AdapterUse[]): { loras: Int32Array; scales: Float32Array } {
  return { loras: Int32Array.from(adapters, (a) => a.index), scales: Float32Array.from(adapters, (a) => a.scale) };
}

/** One string per distinct set: requests with equal keys can share a decode step. */
export function adapterKey(adapters: readonly AdapterUse[]): string {
  return adapters
    .filter((a) => a.scale !== 0)
    .map((a) => `${a.index}:${a.scale}`)
    .sort()
    .join(",");
}
