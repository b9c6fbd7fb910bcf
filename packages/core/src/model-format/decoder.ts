/**
 * The Gemma / Gemma 2 decoder file, checked against everything libllama's loader asserts on (llama.cpp
 * src/llama-model.cpp load_hparams, models/gemma*.cpp, llama-vocab.cpp, llama-model-loader.cpp): a
 * hostile file becomes ERR_MODEL_FORMAT / ERR_UNSUPPORTED_MODEL here, never an abort there.
 */

import type { GGUFFile } from "@pali/base";
import {
  keyError,
  optionalF32,
  optionalString,
  optionalU32,
  requireF32,
  requireString,
  requireU32,
  UnsupportedModelError,
} from "@pali/base";
import { checkKeys, checkTensors, type ExpectedTensor } from "./common.js";
import { checkVocabulary } from "./vocabulary.js";

export interface DecoderHparams {
  arch: "gemma" | "gemma2";
  layers: number;
  embeddingLength: number;
  feedForwardLength: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  contextLength: number;
  vocabSize: number;
}

const LLAMA_MAX_LAYERS = 512;
const MAX_CONTEXT = 1 << 17;
const MAX_WIDTH = 1 << 16;

function archKeys(arch: string): string[] {
  const keys = [
    "context_length",
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "attention.layer_norm_rms_epsilon",
    "rope.freq_base",
    "rope.dimension_count",
  ];
  if (arch === "gemma2") {
    keys.push(
      "attn_logit_softcapping",
      "final_logit_softcapping",
      "attention.sliding_window",
      "attention.sliding_window_pattern",
      "rope.freq_base_swa",
    );
  }
  return keys.map((k) => `${arch}.${k}`);
}

const generalKeys = [
  "general.architecture",
  "general.name",
  "general.file_type",
  "general.quantization_version",
  "general.alignment",
];

/** Keys of the `paligemma.` namespace that readers of the decoder use: typed and in range when present. */
function checkPaliGemmaKeys(file: GGUFFile, vocabSize: number): void {
  const id = { max: vocabSize - 1 };
  optionalU32(file, "paligemma.version", { min: 1, max: 2 });
  optionalU32(file, "paligemma.image_size", { min: 1, max: 1 << 14 });
  optionalU32(file, "paligemma.patch_size", { min: 1, max: 1 << 14 });
  optionalU32(file, "paligemma.image_token_count", { min: 1, max: MAX_CONTEXT });
  optionalU32(file, "paligemma.image_token_id", id);
  optionalU32(file, "paligemma.trained_sliding_window", { min: 1 });
  for (const range of ["loc", "seg"]) {
    const start = optionalU32(file, `paligemma.${range}_token_start`, id);
    const count = optionalU32(file, `paligemma.${range}_token_count`, { min: 1, max: vocabSize });
    if (start !== undefined && count !== undefined && start + count > vocabSize) {
      throw keyError(
        file,
        `paligemma.${range}_token_count`,
        `is ${count}: tokens ${start}.. run past the ${vocabSize}-token vocabulary`,
      );
    }
  }
  for (const key of ["paligemma.source", "paligemma.converter", "paligemma.prompt_layout"]) optionalString(file, key);
}

export function validateDecoder(file: GGUFFile): DecoderHparams {
  const arch = requireString(file, "general.architecture");
  if (arch !== "gemma" && arch !== "gemma2") {
    throw new UnsupportedModelError(
      `${file.path} is a ${JSON.stringify(arch)} model, not a PaliGemma decoder (gemma or gemma2); is it the mmproj?`,
    );
  }
  const vocabKeys = checkVocabulary(file);
  checkKeys(
    file,
    [`${arch}.`, "tokenizer.", "split.", "adapter.", "xielu.", "general.sampling."],
    new Set([...generalKeys, ...archKeys(arch), ...vocabKeys]),
  );
  optionalU32(file, "general.file_type", { max: 1024 });
  optionalU32(file, "general.quantization_version", { max: 1024 });
  optionalString(file, "general.name");

  const k = (name: string) => `${arch}.${name}`;
  const layers = requireU32(file, k("block_count"), { min: 1, max: LLAMA_MAX_LAYERS });
  const embeddingLength = requireU32(file, k("embedding_length"), { min: 1, max: MAX_WIDTH });
  const feedForwardLength = requireU32(file, k("feed_forward_length"), { min: 1, max: 1 << 20 });
  const contextLength = requireU32(file, k("context_length"), { min: 1, max: MAX_CONTEXT });
  const heads = requireU32(file, k("attention.head_count"), { min: 1, max: 1024 });
  const kvHeads = requireU32(file, k("attention.head_count_kv"), { min: 1, max: heads });
  if (heads % kvHeads !== 0)
    throw keyError(file, k("attention.head_count_kv"), `is ${kvHeads}, which does not divide the ${heads} heads`);
  const headDim = requireU32(file, k("attention.key_length"), { min: 2, max: 1024 });
  const valueLength = requireU32(file, k("attention.value_length"), { min: 2, max: 1024 });
  // RoPE rotates pairs, and pali's prefix and the KV cache assume one head width for keys and values.
  if (headDim % 2 !== 0) throw keyError(file, k("attention.key_length"), `is ${headDim}, expected an even head width`);
  if (valueLength !== headDim)
    throw keyError(file, k("attention.value_length"), `is ${valueLength}, expected the key length ${headDim}`);
  optionalU32(file, k("rope.dimension_count"), { min: headDim, max: headDim });
  requireF32(file, k("attention.layer_norm_rms_epsilon"), 1e-12, 0.1);
  optionalF32(file, k("rope.freq_base"), 1, 1e9);
  if (arch === "gemma2") {
    optionalF32(file, k("attn_logit_softcapping"), 0, 1e6);
    optionalF32(file, k("final_logit_softcapping"), 0, 1e6);
    optionalF32(file, k("rope.freq_base_swa"), 1, 1e9);
    optionalU32(file, k("attention.sliding_window"), { min: 1 });
    // A pattern of 1 makes every layer sliding, which trips an assertion in libllama's cache setup; so do
    // fewer layers than the pattern (layer p - 1 is the first global one).
    const pattern = optionalU32(file, k("attention.sliding_window_pattern"), { min: 2, max: LLAMA_MAX_LAYERS }) ?? 2;
    if (layers < pattern) {
      throw keyError(
        file,
        k("block_count"),
        `is ${layers}: a Gemma 2 decoder needs at least ${pattern} layers (one global layer)`,
      );
    }
  }

  const vocabSize = (file.metadata.get("tokenizer.ggml.tokens")?.value as string[]).length;
  checkPaliGemmaKeys(file, vocabSize);
  checkTensors(file, expectedTensors(arch, { layers, embeddingLength, feedForwardLength, heads, kvHeads, headDim, vocabSize }));
  return { arch, layers, embeddingLength, feedForwardLength, heads, kvHeads, headDim, contextLength, vocabSize };
}

function expectedTensors(
  arch: "gemma" | "gemma2",
  h: {
    layers: number;
    embeddingLength: number;
    feedForwardLength: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    vocabSize: number;
  },
): Map<string, ExpectedTensor> {
  const e = h.embeddingLength;
  const f = h.feedForwardLength;
  const q = h.headDim * h.heads;
  const kv = h.headDim * h.kvHeads;
  const m = new Map<string, ExpectedTensor>();
  const norm = (name: string) => m.set(name, { shape: [e], kind: "f32" });
  const weight = (name: string, shape: number[]) => m.set(name, { shape, kind: "weight" });
  weight("token_embd.weight", [e, h.vocabSize]);
  norm("output_norm.weight");
  for (let i = 0; i < h.layers; i++) {
    const b = `blk.${i}.`;
    norm(`${b}attn_norm.weight`);
    weight(`${b}attn_q.weight`, [e, q]);
    weight(`${b}attn_k.weight`, [e, kv]);
    weight(`${b}attn_v.weight`, [e, kv]);
    weight(`${b}attn_output.weight`, [q, e]);
    norm(`${b}ffn_norm.weight`);
    weight(`${b}ffn_gate.weight`, [e, f]);
    weight(`${b}ffn_up.weight`, [e, f]);
    weight(`${b}ffn_down.weight`, [f, e]);
    if (arch === "gemma2") {
      norm(`${b}post_attention_norm.weight`);
      norm(`${b}post_ffw_norm.weight`);
    }
  }
  return m;
}
