/**
 * LoRA adapter files (pali convert --lora): a decoder adapter that libllama applies, and a vision adapter
 * that pali's SigLIP graph applies. Each is checked against the header of the base file it adapts, so an
 * adapter for another model fails here, naming the tensor, instead of in libllama's log.
 */

import type { GGUFFile } from "@pali/base";
import { keyError, ModelFormatError, optionalString, requireString, UnsupportedModelError } from "@pali/base";
import { checkKeys, checkTensors, type ExpectedTensor } from "./common.js";

export interface LoraHparams {
  /** the base file's architecture: gemma, gemma2 (decoder) or clip (vision) */
  arch: string;
  /** adapted base tensors, by GGUF name, with their rank */
  targets: Map<string, number>;
}

const loraTypes: ReadonlySet<string> = new Set(["f32", "f16", "bf16"]);
const knownKeys: ReadonlySet<string> = new Set(["general.architecture", "general.type", "adapter.type", "adapter.lora.alpha"]);

function adapterError(adapter: GGUFFile, problem: string): ModelFormatError {
  return new ModelFormatError(`Invalid LoRA adapter ${adapter.path}: ${problem}`);
}

/**
 * Checks `adapter` against `base` (the decoder or the mmproj it was converted for). Matrices only: libllama
 * applies no adapter to the token embeddings when the prefix arrives as embeddings, as pali's does.
 */
export function validateLora(adapter: GGUFFile, base: GGUFFile): LoraHparams {
  if (optionalString(adapter, "general.type") !== "adapter" || optionalString(adapter, "adapter.type") !== "lora") {
    throw adapterError(
      adapter,
      'general.type must be "adapter" and adapter.type "lora"; is this a model file rather than an adapter?',
    );
  }
  // libllama reads adapter.* keys with typed getters that assert; pali's own notes live under paligemma.lora.*.
  const notes = [...adapter.metadata.keys()].filter((k) => k.startsWith("paligemma.lora."));
  checkKeys(adapter, ["adapter.", "paligemma.", "clip.", "gemma"], new Set([...knownKeys, ...notes]));
  const alpha = adapter.metadata.get("adapter.lora.alpha");
  if (alpha !== undefined && alpha.type !== "f32") throw keyError(adapter, "adapter.lora.alpha", "should be an f32");
  const arch = requireString(adapter, "general.architecture");
  const baseArch = requireString(base, "general.architecture");
  if (arch !== baseArch) {
    throw adapterError(
      adapter,
      `it adapts a ${arch} model but ${base.path} is ${baseArch}; convert the adapter with --base set to this model`,
    );
  }
  const baseTensors = new Map(base.tensors.map((t) => [t.name, t]));
  const expected = new Map<string, ExpectedTensor>();
  const targets = new Map<string, number>();
  for (const t of adapter.tensors) {
    const m = /^(.*)\.lora_([ab])$/.exec(t.name);
    if (!m) throw adapterError(adapter, `tensor ${t.name} is neither a lora_a nor a lora_b`);
    const name = m[1] as string;
    if (name === "token_embd.weight") {
      throw new UnsupportedModelError(
        `LoRA adapter ${adapter.path} adapts the token embeddings, which pali feeds to the decoder itself; merge it instead (pali convert --lora --merge)`,
      );
    }
    const w = baseTensors.get(name);
    if (w === undefined || w.shape.length !== 2) {
      throw adapterError(adapter, `${name} is not a matrix of ${base.path}; was the adapter made for another base model?`);
    }
    if (m[2] !== "a") continue;
    const rank = t.shape[1] ?? 0;
    if (rank < 1 || rank > (w.shape[0] as number)) throw adapterError(adapter, `${t.name} has rank ${rank}`);
    targets.set(name, rank);
    expected.set(t.name, { shape: [w.shape[0] as number, rank], kind: "weight", types: loraTypes });
    expected.set(`${name}.lora_b`, { shape: [rank, w.shape[1] as number], kind: "weight", types: loraTypes });
  }
  try {
    checkTensors(adapter, expected);
  } catch (error) {
    // A shape that disagrees with the base model is the usual symptom of an adapter for another base.
    throw adapterError(
      adapter,
      `${(error as Error).message.replace(/^Invalid model file [^:]*: /, "")} (an adapter for another base model?)`,
    );
  }
  return { arch, targets };
}
