/**
 * What the three model-file validators share: the key policy (every key a native reader could look at
 * is known, typed and in range) and exact tensor checks. They run on the parsed GGUF header before any
 * native load, so that no file reaches a ggml or libllama assertion.
 */

import type { GGUFFile, GGUFTensorInfo } from "@pali/base";
import { GGML_MAX_DIMS, keyError, ModelFormatError, typeLabel } from "@pali/base";

/** ggml types libllama's CPU and GPU matmuls take as weights (what pali convert and libllama's quantizer write). */
export const weightTypes: ReadonlySet<string> = new Set([
  "f32",
  "f16",
  "bf16",
  "q4_0",
  "q4_1",
  "q5_0",
  "q5_1",
  "q8_0",
  "q2_K",
  "q3_K",
  "q4_K",
  "q5_K",
  "q6_K",
  "iq4_nl",
  "iq4_xs",
]);

export function formatError(file: GGUFFile, problem: string): ModelFormatError {
  return new ModelFormatError(
    `Invalid model file ${file.path}: ${problem}; the file is damaged or was not made by pali convert (convert it again)`,
  );
}

/**
 * Keys under these prefixes are read by the native loaders; each must be in `known` (which checks it).
 * `general.*` keys outside `known` are free-form text (or text arrays) that libllama only prints.
 */
export function checkKeys(file: GGUFFile, prefixes: readonly string[], known: ReadonlySet<string>): void {
  for (const [key, value] of file.metadata) {
    if (known.has(key)) continue;
    if (key.startsWith("general.")) {
      if (value.type === "str" || (value.type === "arr" && value.itemType === "str")) continue;
      throw keyError(file, key, `is ${typeLabel(value)}; pali reads no such key and libllama expects text here`);
    }
    if (prefixes.some((p) => key.startsWith(p))) {
      throw keyError(file, key, "is not a key pali writes or reads, and the native loader would interpret it");
    }
  }
}

export interface ExpectedTensor {
  shape: readonly number[];
  /** f32 for norms and biases; weight: any of weightTypes (or `types` when given) */
  kind: "f32" | "weight";
  types?: ReadonlySet<string>;
}

/** ggml-backend.cpp TENSOR_ALIGNMENT */
const TENSOR_ALIGNMENT = 32;
const f32Only: ReadonlySet<string> = new Set(["f32"]);

function padded(shape: readonly number[]): number[] {
  const out = [...shape];
  while (out.length < GGML_MAX_DIMS) out.push(1);
  return out;
}

/** Every tensor of the file is expected, and every expected one is there with exactly this shape and a fitting type. */
export function checkTensors(
  file: GGUFFile,
  expected: ReadonlyMap<string, ExpectedTensor>,
  optional: ReadonlySet<string> = new Set(),
): Map<string, GGUFTensorInfo> {
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  // Missing tensors first: a renamed tensor is reported by the name the loader wants.
  for (const name of expected.keys()) {
    if (!byName.has(name) && !optional.has(name)) throw formatError(file, `missing tensor ${name}`);
  }
  const found = new Map<string, GGUFTensorInfo>();
  for (const t of file.tensors) {
    // ggml's backends assert that a tensor mapped from the file starts TENSOR_ALIGNMENT-aligned (a file
    // with general.alignment below 32 passes ggml's reader and then aborts libllama's mmap load).
    if (t.absoluteOffset % TENSOR_ALIGNMENT !== 0) {
      throw formatError(file, `tensor ${t.name} starts at byte ${t.absoluteOffset}, not a multiple of ${TENSOR_ALIGNMENT}`);
    }
    const want = expected.get(t.name);
    if (want === undefined) throw formatError(file, `it holds tensor ${t.name}, which pali does not know`);
    const have = padded(t.shape);
    const need = padded(want.shape);
    if (have.some((d, i) => d !== need[i])) {
      throw formatError(file, `tensor ${t.name} has shape [${t.shape.join(", ")}], expected [${want.shape.join(", ")}]`);
    }
    const types = want.types ?? (want.kind === "f32" ? f32Only : weightTypes);
    if (!types.has(t.type.name)) {
      throw formatError(file, `tensor ${t.name} has type ${t.type.name}, expected ${[...types].join(", ")}`);
    }
    found.set(t.name, t);
  }
  return found;
}
