/**
 * A tiny Gemma decoder as a GGUF that libllama's loader accepts: random weights from a fixed seed, a
 * SentencePiece-style vocabulary with byte fallback. Used to check our writer against libllama's
 * loader and our reader against libllama's quantizer output.
 */
import { type GGUFTensorInput, type GGUFValue, writeGGUF } from "../../src/index.js";

export const tinyGemma = {
  embd: 256,
  layers: 2,
  heads: 2,
  headsKv: 1,
  headDim: 128,
  ff: 512,
  context: 128,
};

/** Deterministic pseudo-random f32 values in [-scale, scale). */
export function randomF32(count: number, seed: number, scale = 0.05): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 0x100000000 - 0.5) * 2 * scale;
  }
  return out;
}

function vocabulary(): { tokens: string[]; scores: Float32Array; types: Int32Array } {
  const tokens = ["<pad>", "<eos>", "<bos>", "<unk>"];
  const types = [3, 3, 3, 2]; // control, control, control, unknown
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6); // byte
  }
  for (const piece of ["▁", "▁a", "▁the", "▁cat", "▁dog", "ca", "at", "▁c", "\n", "<image>"]) {
    tokens.push(piece);
    types.push(piece === "<image>" ? 4 : 1); // user-defined, normal
  }
  const scores = new Float32Array(tokens.length).map((_, i) => -i);
  return { tokens, scores, types: Int32Array.from(types) };
}

export function tinyGemmaMetadata(): Map<string, GGUFValue> {
  const g = tinyGemma;
  const vocab = vocabulary();
  return new Map<string, GGUFValue>([
    ["general.architecture", { type: "str", value: "gemma" }],
    ["general.name", { type: "str", value: "tiny-gemma-test" }],
    ["general.file_type", { type: "u32", value: 0 }],
    ["gemma.context_length", { type: "u32", value: g.context }],
    ["gemma.embedding_length", { type: "u32", value: g.embd }],
    ["gemma.block_count", { type: "u32", value: g.layers }],
    ["gemma.feed_forward_length", { type: "u32", value: g.ff }],
    ["gemma.attention.head_count", { type: "u32", value: g.heads }],
    ["gemma.attention.head_count_kv", { type: "u32", value: g.headsKv }],
    ["gemma.attention.key_length", { type: "u32", value: g.headDim }],
    ["gemma.attention.value_length", { type: "u32", value: g.headDim }],
    ["gemma.attention.layer_norm_rms_epsilon", { type: "f32", value: 1e-6 }],
    ["tokenizer.ggml.model", { type: "str", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "arr", itemType: "str", value: vocab.tokens }],
    ["tokenizer.ggml.scores", { type: "arr", itemType: "f32", value: vocab.scores }],
    ["tokenizer.ggml.token_type", { type: "arr", itemType: "i32", value: vocab.types }],
    ["tokenizer.ggml.bos_token_id", { type: "u32", value: 2 }],
    ["tokenizer.ggml.eos_token_id", { type: "u32", value: 1 }],
    ["tokenizer.ggml.unknown_token_id", { type: "u32", value: 3 }],
    ["tokenizer.ggml.padding_token_id", { type: "u32", value: 0 }],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: false }],
    ["tokenizer.ggml.add_space_prefix", { type: "bool", value: false }],
  ]);
}

function f32Tensor(name: string, shape: number[], seed: number, fill?: number): GGUFTensorInput {
  const count = shape.reduce((a, b) => a * b, 1);
  const values = fill === undefined ? randomF32(count, seed) : new Float32Array(count).fill(fill);
  return { name, type: "f32", shape, data: new Uint8Array(values.buffer) };
}

export function tinyGemmaTensors(): GGUFTensorInput[] {
  const g = tinyGemma;
  const nVocab = vocabulary().tokens.length;
  const tensors = [f32Tensor("token_embd.weight", [g.embd, nVocab], 1), f32Tensor("output_norm.weight", [g.embd], 2, 0)];
  for (let i = 0; i < g.layers; i++) {
    const seed = 100 * (i + 1);
    tensors.push(
      f32Tensor(`blk.${i}.attn_norm.weight`, [g.embd], seed, 0),
      f32Tensor(`blk.${i}.attn_q.weight`, [g.embd, g.heads * g.headDim], seed + 1),
      f32Tensor(`blk.${i}.attn_k.weight`, [g.embd, g.headsKv * g.headDim], seed + 2),
      f32Tensor(`blk.${i}.attn_v.weight`, [g.embd, g.headsKv * g.headDim], seed + 3),
      f32Tensor(`blk.${i}.attn_output.weight`, [g.heads * g.headDim, g.embd], seed + 4),
      f32Tensor(`blk.${i}.ffn_norm.weight`, [g.embd], seed + 5, 0),
      f32Tensor(`blk.${i}.ffn_gate.weight`, [g.embd, g.ff], seed + 6),
      f32Tensor(`blk.${i}.ffn_up.weight`, [g.embd, g.ff], seed + 7),
      f32Tensor(`blk.${i}.ffn_down.weight`, [g.ff, g.embd], seed + 8),
    );
  }
  return tensors;
}

export async function writeTinyGemma(path: string): Promise<void> {
  await writeGGUF(path, tinyGemmaMetadata(), tinyGemmaTensors());
}
