#!/usr/bin/env node
import { once } from "node:events";
// Writes a synthetic PaliGemma checkpoint directory with seeded random bfloat16 weights, laid out exactly
// as transformers saves one (config.json, sharded *.safetensors with an index, tokenizer.model), for
// benchmarks and for converter tests that need real sizes. Never committed; nothing is downloaded.
//
//   node models/synthetic/make-checkpoint.mjs --out DIR [--model pg1-3b|pg2-3b|pg2-10b|pg2-28b|small] [--resolution 224|448|896]
//
// `pg1-3b`, `pg2-3b`, `pg2-10b` and `pg2-28b` have the real shapes (2.9 B / 3.0 B / 9.7 B / 27.7 B parameters;
// ~6 / 6 / 19 / 55 GB of bf16); `small` is a 60 M parameter model with the tiny fixture tokenizer, big enough to
// take a few seconds to convert.
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    out: { type: "string" },
    model: { type: "string", default: "pg1-3b" },
    resolution: { type: "string", default: "224" },
  },
});
if (!values.out) {
  console.error("usage: make-checkpoint.mjs --out DIR [--model pg1-3b|pg2-3b|pg2-10b|pg2-28b|small] [--resolution 224|448|896]");
  process.exit(2);
}
const resolution = Number(values.resolution);

const models = {
  "pg1-3b": {
    arch: "gemma",
    vocab: 257216,
    hidden: 2048,
    ff: 16384,
    layers: 18,
    heads: 8,
    kv: 1,
    headDim: 256,
    fullTokenizer: true,
  },
  "pg2-3b": {
    arch: "gemma2",
    vocab: 257216,
    hidden: 2304,
    ff: 9216,
    layers: 26,
    heads: 8,
    kv: 4,
    headDim: 256,
    fullTokenizer: true,
  },
  // Gemma 2 9B and 27B decoders (PaliGemma 2 10B and 28B); the 27B scales queries by (hidden / heads)^-0.5
  "pg2-10b": {
    arch: "gemma2",
    vocab: 257216,
    hidden: 3584,
    ff: 14336,
    layers: 42,
    heads: 16,
    kv: 8,
    headDim: 256,
    fullTokenizer: true,
  },
  "pg2-28b": {
    arch: "gemma2",
    vocab: 257216,
    hidden: 4608,
    ff: 36864,
    layers: 46,
    heads: 32,
    kv: 16,
    headDim: 128,
    queryPreAttnScalar: 144,
    fullTokenizer: true,
  },
  small: { arch: "gemma", vocab: 5184, hidden: 1024, ff: 4096, layers: 4, heads: 4, kv: 1, headDim: 256, fullTokenizer: false },
};
const m = models[values.model];
if (!m) throw new Error(`unknown --model ${values.model}`);
const vision = { hidden: 1152, ff: 4304, layers: 27, heads: 16, patch: 14 };
if (values.model === "small") Object.assign(vision, { hidden: 256, ff: 512, layers: 2, heads: 4 });
const imageTokens = (resolution / vision.patch) ** 2;
const imageTokenId = m.fullTokenizer ? 257152 : 5152;

// ---- weights -----------------------------------------------------------------------------------------
const tensors = [];
const add = (name, shape, scale = 0.02) => tensors.push({ name, shape, scale });
const t = "language_model.model.";
add(`${t}embed_tokens.weight`, [m.vocab, m.hidden]);
for (let i = 0; i < m.layers; i++) {
  const p = `${t}layers.${i}.`;
  add(`${p}input_layernorm.weight`, [m.hidden]);
  add(`${p}self_attn.q_proj.weight`, [m.heads * m.headDim, m.hidden]);
  add(`${p}self_attn.k_proj.weight`, [m.kv * m.headDim, m.hidden]);
  add(`${p}self_attn.v_proj.weight`, [m.kv * m.headDim, m.hidden]);
  add(`${p}self_attn.o_proj.weight`, [m.hidden, m.heads * m.headDim]);
  add(`${p}post_attention_layernorm.weight`, [m.hidden]);
  if (m.arch === "gemma2") {
    add(`${p}pre_feedforward_layernorm.weight`, [m.hidden]);
    add(`${p}post_feedforward_layernorm.weight`, [m.hidden]);
  }
  add(`${p}mlp.gate_proj.weight`, [m.ff, m.hidden]);
  add(`${p}mlp.up_proj.weight`, [m.ff, m.hidden]);
  add(`${p}mlp.down_proj.weight`, [m.hidden, m.ff]);
}
add(`${t}norm.weight`, [m.hidden]);
const v = "vision_tower.vision_model.";
add(`${v}embeddings.patch_embedding.weight`, [vision.hidden, 3, vision.patch, vision.patch]);
add(`${v}embeddings.patch_embedding.bias`, [vision.hidden]);
add(`${v}embeddings.position_embedding.weight`, [imageTokens, vision.hidden]);
for (let i = 0; i < vision.layers; i++) {
  const p = `${v}encoder.layers.${i}.`;
  for (const n of ["layer_norm1", "layer_norm2"]) {
    add(`${p}${n}.weight`, [vision.hidden]);
    add(`${p}${n}.bias`, [vision.hidden]);
  }
  for (const n of ["q_proj", "k_proj", "v_proj", "out_proj"]) {
    add(`${p}self_attn.${n}.weight`, [vision.hidden, vision.hidden]);
    add(`${p}self_attn.${n}.bias`, [vision.hidden]);
  }
  add(`${p}mlp.fc1.weight`, [vision.ff, vision.hidden]);
  add(`${p}mlp.fc1.bias`, [vision.ff]);
  add(`${p}mlp.fc2.weight`, [vision.hidden, vision.ff]);
  add(`${p}mlp.fc2.bias`, [vision.hidden]);
}
add(`${v}post_layernorm.weight`, [vision.hidden]);
add(`${v}post_layernorm.bias`, [vision.hidden]);
add("multi_modal_projector.linear.weight", [m.hidden, vision.hidden]);
add("multi_modal_projector.linear.bias", [m.hidden]);

// Seeded xorshift32 → bfloat16 values of roughly uniform [-scale, scale).
let state = 0x12345678;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function fillBf16(out, scale) {
  for (let i = 0; i < out.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    f32[0] = ((state >>> 0) / 4294967296 - 0.5) * 2 * scale;
    out[i] = u32[0] >>> 16;
  }
}

async function writeShard(path, list) {
  const header = {};
  let offset = 0;
  for (const x of list) {
    const bytes = x.shape.reduce((a, b) => a * b, 1) * 2;
    header[x.name] = { dtype: "BF16", shape: x.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const stream = createWriteStream(path);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  stream.write(len);
  stream.write(json);
  const chunk = new Uint16Array(1 << 22);
  for (const x of list) {
    let left = x.shape.reduce((a, b) => a * b, 1);
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      const view = chunk.subarray(0, n);
      fillBf16(view, x.scale);
      if (!stream.write(Buffer.from(view.buffer, view.byteOffset, n * 2))) await once(stream, "drain");
      left -= n;
    }
  }
  stream.end();
  await once(stream, "finish");
}

// ---- tokenizer.model: a SentencePiece ModelProto written by hand --------------------------------------
function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
const field = (num, wire, payload) => Buffer.concat([varint((num << 3) | wire), payload]);
const bytesField = (num, buf) => field(num, 2, Buffer.concat([varint(buf.length), buf]));
const intField = (num, n) => field(num, 0, varint(n));
function floatField(num, x) {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x);
  return field(num, 5, b);
}

function fullTokenizer() {
  const pieces = [];
  const piece = (text, score, type) =>
    pieces.push(bytesField(1, Buffer.concat([bytesField(1, Buffer.from(text)), floatField(2, score), intField(3, type)])));
  piece("<pad>", 0, 3);
  piece("<eos>", 0, 3);
  piece("<bos>", 0, 3);
  piece("<unk>", 0, 2);
  for (let b = 0; b < 256; b++) piece(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, 0, 6);
  for (let i = pieces.length; i < 256000; i++) piece(`▁w${i}`, -i, 1);
  for (let i = 0; i < 1024; i++) piece(`<loc${String(i).padStart(4, "0")}>`, 0, 4);
  for (let i = 0; i < 128; i++) piece(`<seg${String(i).padStart(3, "0")}>`, 0, 4);
  const trainer = Buffer.concat([
    intField(3, 2),
    intField(35, 1),
    intField(40, 3),
    intField(41, 2),
    intField(42, 1),
    intField(43, 0),
  ]);
  // Gemma: no dummy prefix, whitespace kept as is (sentencepiece defaults remove_extra_whitespaces to true)
  const normalizer = Buffer.concat([bytesField(1, Buffer.from("identity")), intField(3, 0), intField(4, 0)]);
  return Buffer.concat([...pieces, bytesField(2, trainer), bytesField(3, normalizer)]);
}

// ---- write ---------------------------------------------------------------------------------------------
mkdirSync(values.out, { recursive: true });
const shardBytes = 2 * 1024 ** 3;
const shards = [[]];
let size = 0;
for (const x of tensors) {
  const bytes = x.shape.reduce((a, b) => a * b, 1) * 2;
  if (size + bytes > shardBytes && shards.at(-1).length > 0) {
    shards.push([]);
    size = 0;
  }
  shards.at(-1).push(x);
  size += bytes;
}
const weightMap = {};
for (const [i, list] of shards.entries()) {
  const file = `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
  console.error(`writing ${file} (${list.length} tensors)`);
  await writeShard(join(values.out, file), list);
  for (const x of list) weightMap[x.name] = file;
}
writeFileSync(join(values.out, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 1));
const text = {
  model_type: m.arch,
  vocab_size: m.vocab,
  hidden_size: m.hidden,
  intermediate_size: m.ff,
  num_hidden_layers: m.layers,
  num_attention_heads: m.heads,
  num_key_value_heads: m.kv,
  head_dim: m.headDim,
  num_image_tokens: imageTokens,
};
if (m.arch === "gemma2")
  Object.assign(text, {
    query_pre_attn_scalar: m.queryPreAttnScalar ?? m.headDim,
    sliding_window: 4096,
    attn_logit_softcapping: 50,
    final_logit_softcapping: 30,
  });
const config = {
  model_type: "paligemma",
  architectures: ["PaliGemmaForConditionalGeneration"],
  image_token_index: imageTokenId,
  projection_dim: m.hidden,
  hidden_size: m.hidden,
  vocab_size: m.vocab,
  _name_or_path: `synthetic/${values.model}-${resolution}`,
  text_config: text,
  vision_config: {
    model_type: "siglip_vision_model",
    hidden_size: vision.hidden,
    intermediate_size: vision.ff,
    num_hidden_layers: vision.layers,
    num_attention_heads: vision.heads,
    patch_size: vision.patch,
    image_size: resolution,
    projection_dim: m.hidden,
  },
};
writeFileSync(join(values.out, "config.json"), JSON.stringify(config, null, 2));
const fixtures = join(here, "..", "fixtures", "tokenizer");
if (m.fullTokenizer) {
  writeFileSync(join(values.out, "tokenizer.model"), fullTokenizer());
  writeFileSync(join(values.out, "added_tokens.json"), JSON.stringify({ "<image>": imageTokenId }));
} else {
  writeFileSync(join(values.out, "tokenizer.model"), readFileSync(join(fixtures, "tokenizer.model")));
  writeFileSync(join(values.out, "added_tokens.json"), readFileSync(join(fixtures, "added_tokens.json")));
}
console.error(`wrote ${values.out}: ${tensors.length} tensors in ${shards.length} shards`);
