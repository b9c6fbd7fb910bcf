/**
 * The model + mmproj pair, checked against each other from their GGUF headers before any native code
 * sees them: a wrong or mismatched file is a typed error, never a libllama or ggml assertion.
 */
import {
  findMaskDecoderBeside,
  findMmprojBeside,
  InvalidArgumentError,
  ModelFormatError,
  mmprojFileName,
  modelStem,
  UnsupportedModelError,
} from "@pali/core";
import { type GGUFFile, getNumber, getString, readGGUF } from "@pali/gguf";

export interface ModelFiles {
  model: GGUFFile;
  mmproj: GGUFFile;
  version: 1 | 2;
  imageSize: number;
  imageTokenCount: number;
  imageTokenId: number;
  embeddingLength: number;
}

/** The image encoder beside the model (pali's naming, @pali/base), when the caller gives only the model. */
async function findMmproj(modelPath: string): Promise<string> {
  const found = await findMmprojBeside(modelPath);
  if (found === undefined) {
    throw new InvalidArgumentError(
      `No mmproj file given and none named ${mmprojFileName(modelStem(modelPath), "<type>")} beside ${modelPath}; pass the image encoder file (pali --mmproj FILE, SDK mmproj: FILE)`,
    );
  }
  return found;
}

/** mask-decoder-f32.gguf (the name `pali convert --seg-vae` writes) beside the model, if there is one. */
export const findMaskDecoder = findMaskDecoderBeside;

function need(file: GGUFFile, key: string): number {
  const v = getNumber(file, key);
  if (v === undefined) throw new ModelFormatError(`${file.path} has no ${key}; convert the checkpoint again with pali convert`);
  return v;
}

export async function openModelFiles(modelPath: string, mmprojPath: string | undefined): Promise<ModelFiles> {
  const model = await readGGUF(modelPath);
  const mmproj = await readGGUF(mmprojPath ?? (await findMmproj(modelPath)));
  const arch = getString(model, "general.architecture");
  if (arch !== "gemma" && arch !== "gemma2") {
    throw new UnsupportedModelError(
      `${modelPath} is a ${arch ?? "unknown"} model, not a PaliGemma decoder (gemma or gemma2); is it the mmproj?`,
    );
  }
  if (!model.metadata.has("paligemma.image_token_count")) {
    throw new UnsupportedModelError(
      `${modelPath} is a Gemma model without PaliGemma's keys; convert a PaliGemma checkpoint with pali convert`,
    );
  }
  if (arch === "gemma2" && getNumber(model, "gemma2.attention.sliding_window_pattern") === 1) {
    throw new ModelFormatError(
      `${modelPath} sets gemma2.attention.sliding_window_pattern = 1, which libllama cannot run; convert it again with pali convert`,
    );
  }
  if (getString(mmproj, "general.architecture") !== "clip" || getString(mmproj, "clip.projector_type") !== "paligemma") {
    throw new UnsupportedModelError(`${mmproj.path} is not a PaliGemma mmproj file (clip with projector_type paligemma)`);
  }
  const embeddingLength = need(model, `${arch}.embedding_length`);
  const projection = need(mmproj, "clip.vision.projection_dim");
  if (projection !== embeddingLength) {
    throw new UnsupportedModelError(
      `${mmproj.path} projects images to width ${projection} but ${modelPath} has width ${embeddingLength}: the two files come from different checkpoints`,
    );
  }
  const imageSize = need(mmproj, "clip.vision.image_size");
  const patch = need(mmproj, "clip.vision.patch_size");
  const imageTokenCount = need(model, "paligemma.image_token_count");
  if ((imageSize / patch) ** 2 !== imageTokenCount || need(model, "paligemma.image_size") !== imageSize) {
    throw new UnsupportedModelError(
      `${mmproj.path} makes ${(imageSize / patch) ** 2} image tokens at ${imageSize} px but ${modelPath} expects ${imageTokenCount}: pair files of the same resolution`,
    );
  }
  return {
    model,
    mmproj,
    version: arch === "gemma" ? 1 : 2,
    imageSize,
    imageTokenCount,
    imageTokenId: need(model, "paligemma.image_token_id"),
    embeddingLength,
  };
}
