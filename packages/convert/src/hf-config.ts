/**
 * A PaliGemma config.json, normalized. Missing fields take transformers' defaults for the sub-config's
 * class (GemmaConfig, Gemma2Config, SiglipVisionConfig), which is how transformers reads the hub files.
 */
import { ModelFormatError, UnsupportedModelError } from "@pali/core";

export interface TextSpec {
  arch: "gemma" | "gemma2";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  contextLength: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  /** Gemma 2 only */
  queryPreAttnScalar?: number;
  attnLogitSoftcap?: number;
  finalLogitSoftcap?: number;
  slidingWindow?: number;
}

export interface VisionSpec {
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  imageSize: number;
  patchSize: number;
  channels: number;
  layerNormEps: number;
}

export interface PaliGemmaSpec {
  version: 1 | 2;
  text: TextSpec;
  vision: VisionSpec;
  projectionDim: number;
  imageTokenId: number;
  imageTokenCount: number;
  /** what the checkpoint says it is (_name_or_path), if anything */
  source: string | undefined;
}

type Json = Record<string, unknown>;

function num(obj: Json, key: string, fallback: number | undefined, where: string): number {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new ModelFormatError(`config.json: ${where}.${key} is missing`);
    return fallback;
  }
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new ModelFormatError(`config.json: ${where}.${key} should be a number, not ${JSON.stringify(v)}`);
  return v;
}

function positiveInt(obj: Json, key: string, fallback: number | undefined, where: string): number {
  const v = num(obj, key, fallback, where);
  if (!Number.isInteger(v) || v <= 0)
    throw new ModelFormatError(`config.json: ${where}.${key} should be a positive integer, not ${v}`);
  return v;
}

function ropeTheta(text: Json): number {
  const params = text.rope_parameters as Json | undefined;
  if (params && typeof params.rope_theta === "number") return params.rope_theta;
  return num(text, "rope_theta", 10000, "text_config");
}

// transformers' class defaults, used for fields a config leaves out.
const gemmaDefaults = {
  vocab_size: 256000,
  hidden_size: 3072,
  intermediate_size: 24576,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 16,
};
const gemma2Defaults = {
  vocab_size: 256000,
  hidden_size: 2304,
  intermediate_size: 9216,
  num_hidden_layers: 26,
  num_attention_heads: 8,
  num_key_value_heads: 4,
};
// PaliGemmaConfig builds this text config when config.json has none at all.
const paligemmaTextDefaults = {
  model_type: "gemma",
  hidden_size: 2048,
  num_hidden_layers: 18,
  intermediate_size: 16384,
  num_attention_heads: 8,
  num_key_value_heads: 1,
  vocab_size: 257152,
};

/**
 * The query scale libllama's Gemma 2 graph will use for this decoder, as `query_pre_attn_scalar` (the scale is
 * its inverse square root). GGUF has no key for it: libllama derives it from the layer count, taking a 46-layer
 * model for Gemma 2 27B, which scales by (hidden / heads)^-0.5, and every other one by head_dim^-0.5
 * (native/vendor/llama.cpp/src/models/gemma2.cpp, `f_attention_scale`).
 */
export function libllamaQueryPreAttnScalar(text: Pick<TextSpec, "layers" | "hiddenSize" | "heads" | "headDim">): number {
  return text.layers === 46 ? text.hiddenSize / text.heads : text.headDim;
}

/** A Gemma 2 config whose query scale libllama would not reproduce converts to a model that answers wrongly. */
function checkQueryScale(text: TextSpec): void {
  const wanted = text.queryPreAttnScalar as number;
  const libllama = libllamaQueryPreAttnScalar(text);
  if (wanted !== libllama) {
    const rule =
      text.layers === 46
        ? `46 layers, so it takes the model for Gemma 2 27B and scales by (hidden_size / heads)^-0.5 = (${text.hiddenSize}/${text.heads})^-0.5`
        : `${text.layers} layers, so it scales by head_dim^-0.5 = ${text.headDim}^-0.5`;
    throw new UnsupportedModelError(
      `config.json: text_config.query_pre_attn_scalar is ${wanted}, but libllama derives the Gemma 2 query scale from ` +
        `the layer count and would use ${libllama} (${rule}); GGUF has no key to say otherwise, so this checkpoint cannot ` +
        "run correctly on libllama. PaliGemma 2 3B/10B use head_dim (256), 28B uses hidden_size / heads (144).",
    );
  }
}

export function parsePaliGemmaConfig(config: unknown): PaliGemmaSpec {
  if (typeof config !== "object" || config === null) throw new ModelFormatError("config.json is not a JSON object");
  const c = config as Json;
  if (c.model_type !== "paligemma") {
    throw new UnsupportedModelError(
      `config.json has model_type ${JSON.stringify(c.model_type)}, not "paligemma": pali converts PaliGemma 1 and 2 checkpoints only`,
    );
  }
  const textRaw = (c.text_config ?? paligemmaTextDefaults) as Json;
  const visionRaw = (c.vision_config ?? {}) as Json;
  const arch = textRaw.model_type ?? "gemma";
  if (arch !== "gemma" && arch !== "gemma2") {
    throw new UnsupportedModelError(
      `text_config.model_type is ${JSON.stringify(arch)}; PaliGemma uses gemma (PG1) or gemma2 (PG2)`,
    );
  }
  const d = arch === "gemma" ? gemmaDefaults : gemma2Defaults;
  const t = "text_config";
  const heads = positiveInt(textRaw, "num_attention_heads", d.num_attention_heads, t);
  const text: TextSpec = {
    arch,
    vocabSize: positiveInt(textRaw, "vocab_size", positiveInt(c, "vocab_size", d.vocab_size, "config"), t),
    hiddenSize: positiveInt(textRaw, "hidden_size", d.hidden_size, t),
    intermediateSize: positiveInt(textRaw, "intermediate_size", d.intermediate_size, t),
    layers: positiveInt(textRaw, "num_hidden_layers", d.num_hidden_layers, t),
    heads,
    kvHeads: positiveInt(textRaw, "num_key_value_heads", d.num_key_value_heads, t),
    headDim: positiveInt(textRaw, "head_dim", 256, t),
    contextLength: positiveInt(textRaw, "max_position_embeddings", 8192, t),
    rmsNormEps: num(textRaw, "rms_norm_eps", 1e-6, t),
    ropeTheta: ropeTheta(textRaw),
    tieWordEmbeddings: (c.tie_word_embeddings ?? textRaw.tie_word_embeddings ?? true) !== false,
  };
  if (arch === "gemma2") {
    text.queryPreAttnScalar = num(textRaw, "query_pre_attn_scalar", 256, t);
    text.attnLogitSoftcap = num(textRaw, "attn_logit_softcapping", 50, t);
    text.finalLogitSoftcap = num(textRaw, "final_logit_softcapping", 30, t);
    text.slidingWindow = positiveInt(textRaw, "sliding_window", 4096, t);
  }
  if (arch === "gemma2") checkQueryScale(text);
  if (text.kvHeads > heads || heads % text.kvHeads !== 0) {
    throw new ModelFormatError(`config.json: ${heads} attention heads cannot share ${text.kvHeads} key/value heads`);
  }
  const v = "vision_config";
  if (visionRaw.model_type !== undefined && visionRaw.model_type !== "siglip_vision_model") {
    throw new UnsupportedModelError(
      `vision_config.model_type is ${JSON.stringify(visionRaw.model_type)}; PaliGemma uses siglip_vision_model`,
    );
  }
  const vision: VisionSpec = {
    hiddenSize: positiveInt(visionRaw, "hidden_size", 768, v),
    intermediateSize: positiveInt(visionRaw, "intermediate_size", 3072, v),
    layers: positiveInt(visionRaw, "num_hidden_layers", 12, v),
    heads: positiveInt(visionRaw, "num_attention_heads", 12, v),
    imageSize: positiveInt(visionRaw, "image_size", 224, v),
    patchSize: positiveInt(visionRaw, "patch_size", 16, v),
    channels: positiveInt(visionRaw, "num_channels", 3, v),
    layerNormEps: num(visionRaw, "layer_norm_eps", 1e-6, v),
  };
  if (vision.imageSize % vision.patchSize !== 0) {
    throw new ModelFormatError(`config.json: image size ${vision.imageSize} is not a multiple of patch size ${vision.patchSize}`);
  }
  const imageTokenCount = (vision.imageSize / vision.patchSize) ** 2;
  const declared = textRaw.num_image_tokens ?? visionRaw.num_image_tokens;
  if (declared !== undefined && declared !== imageTokenCount) {
    throw new ModelFormatError(
      `config.json declares ${String(declared)} image tokens but ${vision.imageSize}/${vision.patchSize} gives ${imageTokenCount}`,
    );
  }
  const imageTokenId = positiveInt(
    c,
    "image_token_index",
    c.image_token_id === undefined ? undefined : num(c, "image_token_id", undefined, "config"),
    "config",
  );
  if (imageTokenId >= text.vocabSize)
    throw new ModelFormatError(`config.json: image token id ${imageTokenId} is outside the ${text.vocabSize}-token vocabulary`);
  return {
    version: arch === "gemma" ? 1 : 2,
    text,
    vision,
    projectionDim: positiveInt(c, "projection_dim", positiveInt(visionRaw, "projection_dim", text.hiddenSize, v), "config"),
    imageTokenId,
    imageTokenCount,
    source: typeof c._name_or_path === "string" && c._name_or_path.length > 0 ? c._name_or_path : undefined,
  };
}
