/**
 * Which GGUF tensor each Hugging Face tensor becomes: its name, its shape check, and the ggml type it is
 * stored in. Type choices for the text model follow llama.cpp's llama-quantize for the same file type
 * (a test compares them with libllama's own quantizer on the same weights).
 */
import { ModelFormatError } from "@pali/core";
import type { PaliGemmaSpec } from "./hf-config.js";
import type { SafetensorsTensor } from "./safetensors.js";

export const modelTypes = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"] as const;
export type ModelType = (typeof modelTypes)[number];
export const mmprojTypes = ["f32", "f16", "bf16", "q8_0", "q4_0"] as const;
export type MmprojType = (typeof mmprojTypes)[number];

/**
 * The image encoder's type for `--mmproj-type auto` (the default), as measured (benchmarks/src/weights.mjs and
 * gemm.mjs, benchmarks/README.md): bf16 on CPUs with AVX512_BF16 and no AMX, where pali's bf16 product runs the
 * tower (a 224 px So400m encode 1.9× as fast as q8_0's there, and closer to the f32 features); q8_0 wherever else
 * the CPU has AVX2 (in AMX int8 tiles 1.83× as fast as ggml's bf16; with AVX2 alone as fast as f16 with pali's
 * product at half the size, within 4.3e-3 of bf16's features, where q4_0's are 3e-2 off); f16 on CPUs not measured.
 */
export function autoMmprojType(cpuFeatures: Readonly<Record<string, string>>): MmprojType {
  if (cpuFeatures.AMX_INT8 === "1") return "q8_0";
  if (cpuFeatures.AVX512_BF16 === "1") return "bf16";
  return cpuFeatures.AVX2 === "1" ? "q8_0" : "f16";
}

/** llama.cpp's `enum llama_ftype` values, stored as general.file_type. */
export const llamaFileType: Record<ModelType, number> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q8_0: 7,
  q4_k_m: 15,
  q5_k_m: 17,
  q6_k: 18,
  bf16: 32,
};

export interface PlannedTensor {
  /** GGUF name */
  name: string;
  source: SafetensorsTensor;
  /** ggml order: shape[0] is the row length */
  shape: number[];
  /** ggml type name */
  type: string;
  /** Gemma's RMSNorm multiplies by (1 + weight); GGUF stores the sum, as llama.cpp's converter does */
  addOne: boolean;
}

/** Canonical HF names: legacy (`vision_tower.vision_model.*`) and transformers 5.x forms map to one. */
export function canonicalName(name: string): { part: "text" | "vision" | "projector" | "ignored"; key: string } | undefined {
  const n = name.replace(/^model\.(?=language_model\.|vision_tower\.|multi_modal_projector\.)/, "");
  let m = /^language_model\.(?:model\.)?(.*)$/.exec(n);
  if (m?.[1] !== undefined) return { part: m[1].startsWith("lm_head.") ? "ignored" : "text", key: m[1] };
  if (n === "lm_head.weight") return { part: "ignored", key: n };
  m = /^vision_tower\.(?:vision_model\.)?(.*)$/.exec(n);
  if (m?.[1] !== undefined) return { part: m[1].startsWith("head.") ? "ignored" : "vision", key: m[1] };
  m = /^multi_modal_projector\.(.*)$/.exec(n);
  if (m?.[1] !== undefined) return { part: "projector", key: m[1] };
  return undefined;
}

function useMoreBits(layer: number, layers: number): boolean {
  return layer < Math.floor(layers / 8) || layer >= Math.floor((7 * layers) / 8) || (layer - Math.floor(layers / 8)) % 3 === 2;
}

const baseQuant: Record<ModelType, string> = {
  f32: "f32",
  f16: "f16",
  bf16: "bf16",
  q8_0: "q8_0",
  q4_0: "q4_0",
  q4_k_m: "q4_K",
  q5_k_m: "q5_K",
  q6_k: "q6_K",
};
const blockSize: Record<string, number> = { q4_0: 32, q5_0: 32, q5_1: 32, q8_0: 32, q4_K: 256, q5_K: 256, q6_K: 256 };
// llama-quantize's fallback when a row is not whole blocks of the chosen type
const fallback: Record<string, string> = { q4_K: "q5_0", q5_K: "q5_1", q6_K: "q8_0" };

/** llama-quantize's type for one 2-D text-model weight (gemma / gemma2, tied embeddings). */
export function textWeightType(
  ftype: ModelType,
  role: "token_embd" | "attn_v" | "ffn_down" | "other",
  layer: number,
  layers: number,
  rowLength: number,
): string {
  let type = baseQuant[ftype];
  if (ftype === "f32" || ftype === "f16" || ftype === "bf16") return type;
  if (role === "token_embd") {
    // the tied embedding is quantized as the output tensor
    type = rowLength % (blockSize[type] ?? 32) !== 0 ? "q8_0" : type !== "q8_0" ? "q6_K" : type;
  } else if (
    (role === "attn_v" || role === "ffn_down") &&
    (ftype === "q4_k_m" || ftype === "q5_k_m") &&
    useMoreBits(layer, layers)
  ) {
    type = "q6_K";
  }
  let size = blockSize[type] ?? 32;
  if (rowLength % size !== 0) {
    type = fallback[type] ?? type;
    size = blockSize[type] ?? 32;
    if (rowLength % size !== 0) type = "f16";
  }
  return type;
}

function mmprojWeightType(mtype: MmprojType, rowLength: number): string {
  if (mtype === "f32" || mtype === "bf16") return mtype;
  // Rows that are not whole 32-value blocks (So400m's 4304-wide MLP output) stay f16.
  return rowLength % 32 === 0 ? mtype : "f16";
}

type Lookup = (hfKey: string) => SafetensorsTensor | undefined;

function need(lookup: Lookup, where: string, key: string, shape: number[]): SafetensorsTensor {
  const t = lookup(key);
  if (t === undefined)
    throw new ModelFormatError(`The checkpoint has no ${where} tensor ${key}; is it a complete PaliGemma checkpoint?`);
  // HF shapes are row-major [outer, ..., inner]; ggml's are the reverse.
  const hf = [...shape].reverse();
  if (t.shape.length !== hf.length || t.shape.some((d, i) => d !== hf[i])) {
    throw new ModelFormatError(
      `Tensor ${t.name} has shape [${t.shape.join(", ")}], expected [${hf.join(", ")}] from config.json`,
    );
  }
  return t;
}

/** The text model's tensors in file order. */
export function planText(spec: PaliGemmaSpec, lookup: Lookup, ftype: ModelType): PlannedTensor[] {
  const t = spec.text;
  const q = t.heads * t.headDim;
  const kv = t.kvHeads * t.headDim;
  const out: PlannedTensor[] = [];
  const add = (
    name: string,
    key: string,
    shape: number[],
    role: "token_embd" | "attn_v" | "ffn_down" | "other" | "norm",
    layer = 0,
  ) => {
    const source = need(lookup, "text", key, shape);
    const isNorm = role === "norm";
    const type = isNorm ? "f32" : textWeightType(ftype, role, layer, t.layers, shape[0] as number);
    out.push({ name, source, shape, type, addOne: isNorm });
  };
  add("token_embd.weight", "embed_tokens.weight", [t.hiddenSize, t.vocabSize], "token_embd");
  for (let i = 0; i < t.layers; i++) {
    const p = `layers.${i}.`;
    const b = `blk.${i}.`;
    add(`${b}attn_norm.weight`, `${p}input_layernorm.weight`, [t.hiddenSize], "norm");
    add(`${b}attn_q.weight`, `${p}self_attn.q_proj.weight`, [t.hiddenSize, q], "other", i);
    add(`${b}attn_k.weight`, `${p}self_attn.k_proj.weight`, [t.hiddenSize, kv], "other", i);
    add(`${b}attn_v.weight`, `${p}self_attn.v_proj.weight`, [t.hiddenSize, kv], "attn_v", i);
    add(`${b}attn_output.weight`, `${p}self_attn.o_proj.weight`, [q, t.hiddenSize], "other", i);
    if (t.arch === "gemma") {
      add(`${b}ffn_norm.weight`, `${p}post_attention_layernorm.weight`, [t.hiddenSize], "norm");
    } else {
      // Gemma 2: post_attention_layernorm normalizes the attention output; the pre-FFN norm is separate.
      add(`${b}post_attention_norm.weight`, `${p}post_attention_layernorm.weight`, [t.hiddenSize], "norm");
      add(`${b}ffn_norm.weight`, `${p}pre_feedforward_layernorm.weight`, [t.hiddenSize], "norm");
      add(`${b}post_ffw_norm.weight`, `${p}post_feedforward_layernorm.weight`, [t.hiddenSize], "norm");
    }
    add(`${b}ffn_gate.weight`, `${p}mlp.gate_proj.weight`, [t.hiddenSize, t.intermediateSize], "other", i);
    add(`${b}ffn_up.weight`, `${p}mlp.up_proj.weight`, [t.hiddenSize, t.intermediateSize], "other", i);
    add(`${b}ffn_down.weight`, `${p}mlp.down_proj.weight`, [t.intermediateSize, t.hiddenSize], "ffn_down", i);
  }
  add("output_norm.weight", "norm.weight", [t.hiddenSize], "norm");
  return out;
}

/** SigLIP tower and projector tensors in file order. */
export function planVision(
  spec: PaliGemmaSpec,
  lookupVision: Lookup,
  lookupProjector: Lookup,
  mtype: MmprojType,
): PlannedTensor[] {
  const v = spec.vision;
  const h = v.hiddenSize;
  const out: PlannedTensor[] = [];
  const add = (name: string, lookup: Lookup, key: string, shape: number[], kind: "weight" | "keep" | "conv") => {
    const source = need(lookup, "vision", key, shape);
    const type =
      kind === "keep" ? "f32" : kind === "conv" ? (mtype === "f32" ? "f32" : "f16") : mmprojWeightType(mtype, shape[0] as number);
    out.push({ name, source, shape, type, addOne: false });
  };
  add(
    "v.patch_embd.weight",
    lookupVision,
    "embeddings.patch_embedding.weight",
    [v.patchSize, v.patchSize, v.channels, h],
    "conv",
  );
  add("v.patch_embd.bias", lookupVision, "embeddings.patch_embedding.bias", [h], "keep");
  add("v.position_embd.weight", lookupVision, "embeddings.position_embedding.weight", [h, spec.imageTokenCount], "keep");
  for (let i = 0; i < v.layers; i++) {
    const p = `encoder.layers.${i}.`;
    const b = `v.blk.${i}.`;
    for (const [gguf, hf] of [
      ["ln1", "layer_norm1"],
      ["ln2", "layer_norm2"],
    ] as const) {
      add(`${b}${gguf}.weight`, lookupVision, `${p}${hf}.weight`, [h], "keep");
      add(`${b}${gguf}.bias`, lookupVision, `${p}${hf}.bias`, [h], "keep");
    }
    for (const [gguf, hf] of [
      ["attn_q", "self_attn.q_proj"],
      ["attn_k", "self_attn.k_proj"],
      ["attn_v", "self_attn.v_proj"],
      ["attn_out", "self_attn.out_proj"],
    ] as const) {
      add(`${b}${gguf}.weight`, lookupVision, `${p}${hf}.weight`, [h, h], "weight");
      add(`${b}${gguf}.bias`, lookupVision, `${p}${hf}.bias`, [h], "keep");
    }
    add(`${b}ffn_up.weight`, lookupVision, `${p}mlp.fc1.weight`, [h, v.intermediateSize], "weight");
    add(`${b}ffn_up.bias`, lookupVision, `${p}mlp.fc1.bias`, [v.intermediateSize], "keep");
    add(`${b}ffn_down.weight`, lookupVision, `${p}mlp.fc2.weight`, [v.intermediateSize, h], "weight");
    add(`${b}ffn_down.bias`, lookupVision, `${p}mlp.fc2.bias`, [h], "keep");
  }
  add("v.post_ln.weight", lookupVision, "post_layernorm.weight", [h], "keep");
  add("v.post_ln.bias", lookupVision, "post_layernorm.bias", [h], "keep");
  add("mm.proj.weight", lookupProjector, "linear.weight", [h, spec.projectionDim], "weight");
  add("mm.proj.bias", lookupProjector, "linear.bias", [spec.projectionDim], "keep");
  return out;
}
