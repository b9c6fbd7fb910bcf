/**
 * The segmentation mask-decoder file, checked as native/src/model/mask_decoder.cpp binds it: f32 tensors
 * of exactly the shapes its hyperparameters give, nothing else.
 */

import type { GGUFFile } from "@pali/base";
import { keyError, optionalString, optionalU32, requireString, requireU32, UnsupportedModelError } from "@pali/base";
import { checkKeys, checkTensors, type ExpectedTensor } from "./common.js";

export const MASK_DECODER_ARCH = "paligemma-mask-decoder";

export interface MaskDecoderHparams {
  codebookSize: number;
  embeddingLength: number;
  channels: number;
  resBlocks: number;
  upsamples: number;
  gridSize: number;
  maskSize: number;
}

const k = (name: string) => `paligemma.mask.${name}`;
const int = (min: number, max: number) => ({ types: ["u32", "i32"] as const, min, max });

export function validateMaskDecoderFile(file: GGUFFile): MaskDecoderHparams {
  const arch = requireString(file, "general.architecture");
  if (arch !== MASK_DECODER_ARCH) {
    throw new UnsupportedModelError(
      `${file.path} is a ${JSON.stringify(arch)} file, not a mask decoder (${MASK_DECODER_ARCH}); make it with \`pali convert --seg-vae vae-oid.npz\``,
    );
  }
  const keys = [
    "codebook_size",
    "embedding_length",
    "channels",
    "res_block_count",
    "upsample_count",
    "grid_size",
    "mask_size",
    "source",
  ];
  checkKeys(
    file,
    ["paligemma.mask."],
    new Set(["general.architecture", "general.name", "general.file_type", "general.alignment", ...keys.map(k)]),
  );
  optionalString(file, "general.name");
  optionalString(file, k("source"));
  optionalU32(file, "general.file_type", { max: 1024 });
  const codebookSize = requireU32(file, k("codebook_size"), int(1, 65536));
  const embeddingLength = requireU32(file, k("embedding_length"), int(1, 65536));
  const channels = requireU32(file, k("channels"), int(1, 8192));
  const resBlocks = requireU32(file, k("res_block_count"), int(0, 16));
  const upsamples = requireU32(file, k("upsample_count"), int(1, 8));
  const gridSize = requireU32(file, k("grid_size"), int(1, 64));
  const maskSize = requireU32(file, k("mask_size"), int(1, 4096));
  if (channels % 2 ** (upsamples - 1) !== 0) {
    throw keyError(file, k("channels"), `is ${channels}, which cannot be halved ${upsamples - 1} times`);
  }
  if (maskSize !== gridSize * 2 ** upsamples) {
    throw keyError(
      file,
      k("mask_size"),
      `is ${maskSize}, but a ${gridSize}-wide grid upsampled ${upsamples} times gives ${gridSize * 2 ** upsamples}`,
    );
  }

  const m = new Map<string, ExpectedTensor>();
  const conv = (name: string, size: number, inC: number, outC: number) => {
    m.set(`${name}.weight`, { shape: [size, size, inC, outC], kind: "f32" });
    m.set(`${name}.bias`, { shape: [outC], kind: "f32" });
  };
  m.set("mask.codebook", { shape: [embeddingLength, codebookSize], kind: "f32" });
  conv("mask.dec.conv_in", 1, embeddingLength, channels);
  for (let r = 0; r < resBlocks; r++) {
    conv(`mask.dec.res.${r}.conv1`, 3, channels, channels);
    conv(`mask.dec.res.${r}.conv2`, 3, channels, channels);
    conv(`mask.dec.res.${r}.conv3`, 1, channels, channels);
  }
  let inC = channels;
  for (let j = 0; j < upsamples; j++) {
    const outC = channels / 2 ** j;
    m.set(`mask.dec.up.${j}.weight`, { shape: [4, 4, outC, inC], kind: "f32" });
    m.set(`mask.dec.up.${j}.bias`, { shape: [outC], kind: "f32" });
    inC = outC;
  }
  conv("mask.dec.conv_out", 1, inC, 1);
  checkTensors(file, m);
  return { codebookSize, embeddingLength, channels, resBlocks, upsamples, gridSize, maskSize };
}
