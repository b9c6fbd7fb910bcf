/**
 * Config-shape tests for every published family (PaliGemma 1 3B; PaliGemma 2 3B, 10B, 28B) at 224/448/896, from
 * the hub's real config.json files (models/fixtures/hub-configs): the parsed spec, every planned tensor's GGUF
 * name, shape and type against a checkpoint laid out as transformers saves it, the GGUF keys libllama reads, and
 * the query scale libllama will derive. No weights: a full-size checkpoint is only its tensor index here.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { GGUFValue } from "@pali/gguf";
import { describe, expect, it } from "vitest";
import {
  canonicalName,
  libllamaQueryPreAttnScalar,
  mmprojMetadata,
  modelMetadata,
  type PaliGemmaSpec,
  parsePaliGemmaConfig,
  planText,
  planVision,
  type SafetensorsTensor,
  type Vocabulary,
} from "../src/index.js";

const configs = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "models", "fixtures", "hub-configs");
const readConfig = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(configs, `${name}.json`), "utf8")) as Record<string, unknown>;

interface Family {
  repo: string;
  version: 1 | 2;
  arch: "gemma" | "gemma2";
  hidden: number;
  layers: number;
  heads: number;
  kv: number;
  headDim: number;
  ff: number;
  queryScalar?: number;
  /** decoder parameters without the embedding, for a sanity check of the plan */
  blockParams: number;
}

// The real sizes (SPEC.md §1.7), written out here rather than taken from the configs under test.
const families: Record<string, Family> = {
  "pg1-3b": {
    repo: "paligemma-3b",
    version: 1,
    arch: "gemma",
    hidden: 2048,
    layers: 18,
    heads: 8,
    kv: 1,
    headDim: 256,
    ff: 16384,
    blockParams: 1_981_882_368,
  },
  "pg2-3b": {
    repo: "paligemma2-3b",
    version: 2,
    arch: "gemma2",
    hidden: 2304,
    layers: 26,
    heads: 8,
    kv: 4,
    headDim: 256,
    ff: 9216,
    queryScalar: 256,
    blockParams: 2_024_515_584,
  },
  "pg2-10b": {
    repo: "paligemma2-10b",
    version: 2,
    arch: "gemma2",
    hidden: 3584,
    layers: 42,
    heads: 16,
    kv: 8,
    headDim: 256,
    ff: 14336,
    queryScalar: 256,
    blockParams: 8_324_198_400,
  },
  "pg2-28b": {
    repo: "paligemma2-28b",
    version: 2,
    arch: "gemma2",
    hidden: 4608,
    layers: 46,
    heads: 32,
    kv: 16,
    headDim: 128,
    ff: 36864,
    queryScalar: 144,
    blockParams: 26_047_475_712,
  },
};
const resolutions = [224, 448, 896] as const;
const VOCAB = 257216;
const VISION = { hidden: 1152, ff: 4304, layers: 27, patch: 14 };

/** The tensor index of a checkpoint saved by transformers 4.4x for this family: names and HF shapes. */
function checkpointIndex(f: Family, resolution: number): SafetensorsTensor[] {
  const out: SafetensorsTensor[] = [];
  const add = (name: string, shape: number[]) =>
    out.push({ name, dtype: "BF16", shape, start: 0, byteLength: shape.reduce((a, b) => a * b, 2), file: "model.safetensors" });
  const t = "language_model.model.";
  add(`${t}embed_tokens.weight`, [VOCAB, f.hidden]);
  for (let i = 0; i < f.layers; i++) {
    const p = `${t}layers.${i}.`;
    add(`${p}input_layernorm.weight`, [f.hidden]);
    add(`${p}self_attn.q_proj.weight`, [f.heads * f.headDim, f.hidden]);
    add(`${p}self_attn.k_proj.weight`, [f.kv * f.headDim, f.hidden]);
    add(`${p}self_attn.v_proj.weight`, [f.kv * f.headDim, f.hidden]);
    add(`${p}self_attn.o_proj.weight`, [f.hidden, f.heads * f.headDim]);
    add(`${p}post_attention_layernorm.weight`, [f.hidden]);
    if (f.arch === "gemma2") {
      add(`${p}pre_feedforward_layernorm.weight`, [f.hidden]);
      add(`${p}post_feedforward_layernorm.weight`, [f.hidden]);
    }
    add(`${p}mlp.gate_proj.weight`, [f.ff, f.hidden]);
    add(`${p}mlp.up_proj.weight`, [f.ff, f.hidden]);
    add(`${p}mlp.down_proj.weight`, [f.hidden, f.ff]);
  }
  add(`${t}norm.weight`, [f.hidden]);
  const v = "vision_tower.vision_model.";
  add(`${v}embeddings.patch_embedding.weight`, [VISION.hidden, 3, VISION.patch, VISION.patch]);
  add(`${v}embeddings.patch_embedding.bias`, [VISION.hidden]);
  add(`${v}embeddings.position_embedding.weight`, [(resolution / VISION.patch) ** 2, VISION.hidden]);
  for (let i = 0; i < VISION.layers; i++) {
    const p = `${v}encoder.layers.${i}.`;
    for (const n of ["layer_norm1", "layer_norm2"]) {
      add(`${p}${n}.weight`, [VISION.hidden]);
      add(`${p}${n}.bias`, [VISION.hidden]);
    }
    for (const n of ["q_proj", "k_proj", "v_proj", "out_proj"]) {
      add(`${p}self_attn.${n}.weight`, [VISION.hidden, VISION.hidden]);
      add(`${p}self_attn.${n}.bias`, [VISION.hidden]);
    }
    add(`${p}mlp.fc1.weight`, [VISION.ff, VISION.hidden]);
    add(`${p}mlp.fc1.bias`, [VISION.ff]);
    add(`${p}mlp.fc2.weight`, [VISION.hidden, VISION.ff]);
    add(`${p}mlp.fc2.bias`, [VISION.hidden]);
  }
  add(`${v}post_layernorm.weight`, [VISION.hidden]);
  add(`${v}post_layernorm.bias`, [VISION.hidden]);
  add("multi_modal_projector.linear.weight", [f.hidden, VISION.hidden]);
  add("multi_modal_projector.linear.bias", [f.hidden]);
  return out;
}

function lookups(tensors: SafetensorsTensor[]) {
  const parts = { text: new Map<string, SafetensorsTensor>(), vision: new Map(), projector: new Map() };
  for (const t of tensors) {
    const c = canonicalName(t.name);
    if (c && c.part !== "ignored") parts[c.part].set(c.key, t);
  }
  return {
    text: (k: string) => parts.text.get(k),
    vision: (k: string) => parts.vision.get(k) as SafetensorsTensor | undefined,
    projector: (k: string) => parts.projector.get(k) as SafetensorsTensor | undefined,
  };
}

/** A vocabulary with the real layout (256000 base pieces, then <loc>, then <seg>, padded to 257216). */
function vocabulary(): Vocabulary {
  const tokens = Array.from({ length: VOCAB }, (_, i) => `t${i}`);
  return {
    tokens,
    scores: new Float32Array(VOCAB),
    types: new Int32Array(VOCAB).fill(1),
    bosId: 2,
    eosId: 1,
    unkId: 3,
    padId: 0,
    locStart: 256000,
    segStart: 257024,
  };
}

const kv = (list: [string, GGUFValue][]) => new Map(list.map(([k, v]) => [k, (v as { value: unknown }).value]));

for (const [family, f] of Object.entries(families)) {
  describe(`${family} (${f.arch}: ${f.hidden} wide, ${f.layers} layers, ${f.heads}/${f.kv} heads of ${f.headDim})`, () => {
    for (const resolution of resolutions) {
      const name = `${f.repo}-pt-${resolution}`;
      const tokens = (resolution / VISION.patch) ** 2;

      it(`${resolution} px: the hub config parses to the real shapes`, () => {
        const spec = parsePaliGemmaConfig(readConfig(name));
        expect(spec.version).toBe(f.version);
        expect(spec.text).toMatchObject({
          arch: f.arch,
          vocabSize: VOCAB,
          hiddenSize: f.hidden,
          intermediateSize: f.ff,
          layers: f.layers,
          heads: f.heads,
          kvHeads: f.kv,
          headDim: f.headDim,
          contextLength: 8192,
          rmsNormEps: 1e-6,
          ropeTheta: 10000,
          tieWordEmbeddings: true,
        });
        if (f.arch === "gemma2")
          expect(spec.text).toMatchObject({
            queryPreAttnScalar: f.queryScalar,
            attnLogitSoftcap: 50,
            finalLogitSoftcap: 30,
            slidingWindow: 4096,
          });
        else expect(spec.text.queryPreAttnScalar).toBeUndefined();
        expect(spec.vision).toMatchObject({
          hiddenSize: 1152,
          intermediateSize: 4304,
          layers: 27,
          heads: 16,
          imageSize: resolution,
          patchSize: 14,
        });
        expect(spec).toMatchObject({ projectionDim: f.hidden, imageTokenId: 257152, imageTokenCount: tokens });
      });

      it(`${resolution} px: every tensor is planned with its GGUF name, ggml shape and q4_k_m type`, () => {
        const spec = parsePaliGemmaConfig(readConfig(name));
        const parts = lookups(checkpointIndex(f, resolution));
        const text = planText(spec, parts.text, "q4_k_m");
        const perLayer = f.arch === "gemma2" ? 11 : 9;
        expect(text.length).toBe(2 + f.layers * perLayer);
        const by = new Map(text.map((t) => [t.name, t]));
        const q = f.heads * f.headDim;
        const k = f.kv * f.headDim;
        expect(by.get("token_embd.weight")).toMatchObject({ shape: [f.hidden, VOCAB], type: "q6_K" });
        expect(by.get("blk.0.attn_q.weight")).toMatchObject({ shape: [f.hidden, q], type: "q4_K" });
        expect(by.get("blk.0.attn_k.weight")).toMatchObject({ shape: [f.hidden, k], type: "q4_K" });
        expect(by.get("blk.0.attn_v.weight")).toMatchObject({ shape: [f.hidden, k], type: "q6_K" });
        expect(by.get("blk.0.attn_output.weight")).toMatchObject({ shape: [q, f.hidden], type: "q4_K" });
        expect(by.get("blk.0.ffn_gate.weight")).toMatchObject({ shape: [f.hidden, f.ff], type: "q4_K" });
        expect(by.get("blk.0.ffn_down.weight")).toMatchObject({ shape: [f.ff, f.hidden], type: "q6_K" });
        const last = f.layers - 1;
        expect(by.get(`blk.${last}.ffn_up.weight`)).toMatchObject({ shape: [f.hidden, f.ff] });
        expect(by.get("output_norm.weight")).toMatchObject({ shape: [f.hidden], type: "f32", addOne: true });
        if (f.arch === "gemma2") {
          for (const n of ["post_attention_norm", "ffn_norm", "post_ffw_norm"])
            expect(by.get(`blk.${last}.${n}.weight`)).toMatchObject({ shape: [f.hidden], type: "f32", addOne: true });
        } else {
          expect(by.get("blk.0.ffn_norm.weight")?.source.name).toBe(
            "language_model.model.layers.0.post_attention_layernorm.weight",
          );
          expect(by.has("blk.0.post_ffw_norm.weight")).toBe(false);
        }
        // llama-quantize's q4_k_m mix: the middle layers keep q4_K for attn_v / ffn_down except every third
        const mid = Math.floor(f.layers / 2);
        const types = [mid, mid + 1, mid + 2].map((i) => by.get(`blk.${i}.ffn_down.weight`)?.type).sort();
        expect(types).toEqual(["q4_K", "q4_K", "q6_K"]);
        const elements = (name: string) => (by.get(name)?.shape ?? []).reduce((a, b) => a * b, 1);
        const blocks = text.filter((t) => t.name.startsWith("blk.")).reduce((n, t) => n + elements(t.name), 0);
        expect(blocks).toBe(f.blockParams);

        const vision = planVision(spec, parts.vision, parts.projector, "bf16");
        expect(vision.length).toBe(3 + 27 * 16 + 2 + 2);
        const vb = new Map(vision.map((t) => [t.name, t]));
        expect(vb.get("v.position_embd.weight")).toMatchObject({ shape: [1152, tokens], type: "f32" });
        expect(vb.get("v.patch_embd.weight")).toMatchObject({ shape: [14, 14, 3, 1152], type: "f16" });
        expect(vb.get("v.blk.26.ffn_down.weight")).toMatchObject({ shape: [4304, 1152], type: "bf16" });
        expect(vb.get("mm.proj.weight")).toMatchObject({ shape: [1152, f.hidden], type: "bf16" });
        expect(vb.get("mm.proj.bias")).toMatchObject({ shape: [f.hidden], type: "f32" });
      });

      it(`${resolution} px: the GGUF keys libllama and pali's loader read`, () => {
        const spec = parsePaliGemmaConfig(readConfig(name));
        const model = kv(modelMetadata(spec, name, "q4_k_m", vocabulary()));
        const a = f.arch;
        expect(model.get("general.architecture")).toBe(a);
        expect(model.get("general.file_type")).toBe(15);
        expect(model.get(`${a}.embedding_length`)).toBe(f.hidden);
        expect(model.get(`${a}.block_count`)).toBe(f.layers);
        expect(model.get(`${a}.feed_forward_length`)).toBe(f.ff);
        expect(model.get(`${a}.attention.head_count`)).toBe(f.heads);
        expect(model.get(`${a}.attention.head_count_kv`)).toBe(f.kv);
        expect(model.get(`${a}.attention.key_length`)).toBe(f.headDim);
        expect(model.get(`${a}.attention.value_length`)).toBe(f.headDim);
        expect(model.get(`${a}.context_length`)).toBe(8192);
        expect(model.get(`${a}.rope.freq_base`)).toBe(10000);
        expect(model.get("paligemma.version")).toBe(f.version);
        expect(model.get("paligemma.image_size")).toBe(resolution);
        expect(model.get("paligemma.image_token_count")).toBe(tokens);
        expect(model.get("paligemma.image_token_id")).toBe(257152);
        expect(model.get("paligemma.loc_token_start")).toBe(256000);
        expect(model.get("paligemma.seg_token_start")).toBe(257024);
        expect((model.get("tokenizer.ggml.tokens") as string[]).length).toBe(VOCAB);
        if (a === "gemma2") {
          expect(model.get("gemma2.attn_logit_softcapping")).toBe(50);
          expect(model.get("gemma2.final_logit_softcapping")).toBe(30);
          expect(model.get("paligemma.trained_sliding_window")).toBe(4096);
          expect(model.get("gemma2.attention.sliding_window")).toBeGreaterThanOrEqual(1 << 20);
        }
        const mmproj = kv(mmprojMetadata(spec, name, "bf16"));
        expect(mmproj.get("clip.vision.image_size")).toBe(resolution);
        expect(mmproj.get("clip.vision.projection_dim")).toBe(f.hidden);
        expect(mmproj.get("clip.vision.block_count")).toBe(27);
        expect(mmproj.get("clip.vision.feed_forward_length")).toBe(4304);
      });
    }

    if (f.arch === "gemma2") {
      it("libllama derives the query scale the config asks for, from the layer count and the key length written", () => {
        const spec = parsePaliGemmaConfig(readConfig(`${f.repo}-pt-224`));
        // what libllama reads back: block_count, embedding_length, head_count and key_length from the file
        const model = kv(modelMetadata(spec, "x", "q4_k_m", vocabulary()));
        const fromFile = {
          layers: model.get("gemma2.block_count") as number,
          hiddenSize: model.get("gemma2.embedding_length") as number,
          heads: model.get("gemma2.attention.head_count") as number,
          headDim: model.get("gemma2.attention.key_length") as number,
        };
        expect(libllamaQueryPreAttnScalar(fromFile)).toBe(f.queryScalar);
      });
    }
  });
}

describe("a query scale libllama would not reproduce", () => {
  const withText = (name: string, change: Record<string, unknown>) => {
    const c = readConfig(name);
    return { ...c, text_config: { ...(c.text_config as Record<string, unknown>), ...change } };
  };

  it("is refused with ERR_UNSUPPORTED_MODEL naming both scales", () => {
    // a 28B-like decoder told to scale by head_dim: libllama would use hidden / heads = 144
    expect(() => parsePaliGemmaConfig(withText("paligemma2-28b-pt-224", { query_pre_attn_scalar: 128 }))).toThrow(
      expect.objectContaining({ code: "ERR_UNSUPPORTED_MODEL", message: expect.stringMatching(/is 128, .* would use 144/) }),
    );
    // a 10B with the 27B rule's scalar: libllama uses head_dim (256) for 42 layers
    expect(() => parsePaliGemmaConfig(withText("paligemma2-10b-pt-448", { query_pre_attn_scalar: 224 }))).toThrow(
      expect.objectContaining({ code: "ERR_UNSUPPORTED_MODEL", message: expect.stringMatching(/would use 256 \(42 layers/) }),
    );
    // the default (256) on a config that leaves the field out but has head_dim 128 and 46 layers
    const { query_pre_attn_scalar: _, ...text } = readConfig("paligemma2-28b-pt-896").text_config as Record<string, unknown>;
    expect(() => parsePaliGemmaConfig({ ...readConfig("paligemma2-28b-pt-896"), text_config: text })).toThrow(
      expect.objectContaining({ code: "ERR_UNSUPPORTED_MODEL" }),
    );
  });

  it("does not apply to Gemma 1, whose graph always scales by head_dim", () => {
    const spec: PaliGemmaSpec = parsePaliGemmaConfig(withText("paligemma-3b-pt-224", { query_pre_attn_scalar: 100 }));
    expect(spec.text.queryPreAttnScalar).toBeUndefined();
  });
});
