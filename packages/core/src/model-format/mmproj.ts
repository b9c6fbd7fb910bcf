/**
 * The mmproj file (SigLIP tower + projector), checked as native/src/model/vision_loader.cpp binds it, and
 * with the exact key types ggml's typed getters assert on (a bool stored as i8 used to abort).
 */
import type { GGUFFile } from "@pali/base";
import {
  keyError,
  optionalBool,
  optionalString,
  optionalU32,
  requireF32,
  requireString,
  requireU32,
  UnsupportedModelError,
} from "@pali/base";
import { checkKeys, checkTensors, type ExpectedTensor } from "./common.js";

export interface MmprojHparams {
  imageSize: number;
  patchSize: number;
  embeddingLength: number;
  feedForwardLength: number;
  layers: number;
  heads: number;
  projectionDim: number;
}

// The C++ loader reads these as i32 or u32 in 1 .. 2^24.
const int = { types: ["u32", "i32"] as const, min: 1, max: 1 << 24 };

const known = new Set([
  "general.architecture",
  "general.name",
  "general.file_type",
  "general.alignment",
  "clip.has_vision_encoder",
  "clip.projector_type",
  "clip.vision.image_size",
  "clip.vision.patch_size",
  "clip.vision.embedding_length",
  "clip.vision.feed_forward_length",
  "clip.vision.block_count",
  "clip.vision.attention.head_count",
  "clip.vision.attention.layer_norm_epsilon",
  "clip.vision.projection_dim",
  "clip.vision.image_mean",
  "clip.vision.image_std",
  "paligemma.has_mask_decoder",
]);

export function validateMmproj(file: GGUFFile): MmprojHparams {
  const arch = requireString(file, "general.architecture");
  const projector = file.metadata.has("clip.projector_type") ? requireString(file, "clip.projector_type") : undefined;
  if (arch !== "clip" || projector !== "paligemma") {
    throw new UnsupportedModelError(
      `${file.path} is not a PaliGemma mmproj file (architecture clip with projector_type paligemma); is it the model file?`,
    );
  }
  checkKeys(file, ["clip.", "paligemma.has_"], known);
  optionalString(file, "general.name");
  optionalU32(file, "general.file_type", { max: 1024 });
  optionalBool(file, "clip.has_vision_encoder");
  for (const key of ["clip.vision.image_mean", "clip.vision.image_std"]) {
    const v = file.metadata.get(key);
    if (v !== undefined && (v.type !== "arr" || v.itemType !== "f32" || v.value.length !== 3)) {
      throw keyError(file, key, "should be an array of 3 f32");
    }
  }
  // Files of earlier pali versions say false here; the mask decoder lives in its own file.
  if (optionalBool(file, "paligemma.has_mask_decoder") === true) {
    throw keyError(
      file,
      "paligemma.has_mask_decoder",
      "is true, but pali reads the mask decoder from its own file: convert it with pali convert --seg-vae vae-oid.npz",
    );
  }

  const imageSize = requireU32(file, "clip.vision.image_size", int);
  const patchSize = requireU32(file, "clip.vision.patch_size", int);
  const embeddingLength = requireU32(file, "clip.vision.embedding_length", int);
  const feedForwardLength = requireU32(file, "clip.vision.feed_forward_length", int);
  const layers = requireU32(file, "clip.vision.block_count", { ...int, max: 1024 });
  const heads = requireU32(file, "clip.vision.attention.head_count", { ...int, max: 1024 });
  const projectionDim = requireU32(file, "clip.vision.projection_dim", int);
  requireF32(file, "clip.vision.attention.layer_norm_epsilon", 1e-12, 0.5);
  if (imageSize % patchSize !== 0)
    throw keyError(file, "clip.vision.image_size", `is ${imageSize}, not a multiple of the patch size ${patchSize}`);
  if (embeddingLength % heads !== 0) {
    throw keyError(file, "clip.vision.attention.head_count", `is ${heads}, which does not divide the width ${embeddingLength}`);
  }
  const side = imageSize / patchSize;

  const m = new Map<string, ExpectedTensor>();
  const h = embeddingLength;
  const f = feedForwardLength;
  const bias = (name: string, n: number) => m.set(name, { shape: [n], kind: "f32" });
  const weight = (name: string, shape: number[]) => m.set(name, { shape, kind: "weight", types: visionWeightTypes });
  weight("v.patch_embd.weight", [patchSize, patchSize, 3, h]);
  bias("v.patch_embd.bias", h);
  m.set("v.position_embd.weight", { shape: [h, side * side], kind: "f32" });
  for (let i = 0; i < layers; i++) {
    const b = `v.blk.${i}.`;
    for (const n of ["ln1", "ln2"]) {
      bias(`${b}${n}.weight`, h);
      bias(`${b}${n}.bias`, h);
    }
    for (const n of ["attn_q", "attn_k", "attn_v", "attn_out"]) {
      weight(`${b}${n}.weight`, [h, h]);
      bias(`${b}${n}.bias`, h);
    }
    weight(`${b}ffn_up.weight`, [h, f]);
    bias(`${b}ffn_up.bias`, f);
    weight(`${b}ffn_down.weight`, [f, h]);
    bias(`${b}ffn_down.bias`, h);
  }
  bias("v.post_ln.weight", h);
  bias("v.post_ln.bias", h);
  weight("mm.proj.weight", [h, projectionDim]);
  bias("mm.proj.bias", projectionDim);
  checkTensors(file, m);
  return { imageSize, patchSize, embeddingLength, feedForwardLength, layers, heads, projectionDim };
}

/** The types vision_loader.cpp's gguf_checker accepts for weights. */
const visionWeightTypes: ReadonlySet<string> = new Set(["f32", "f16", "bf16", "q8_0", "q4_0"]);
