/**
 * big_vision's segmentation VQ-VAE (`vae-oid.npz`, SPEC §8.2) → `mask-decoder-f32.gguf`: the codebook and
 * the decoder only, in float32, under `mask.*` names (docs/model-format.md, "Segmentation decoder").
 * The file is the same for every PaliGemma checkpoint, so it is its own file rather than part of an mmproj.
 */
import { stat } from "node:fs/promises";
import { basename, join } from "node:path";
import {
  expectAbortSignal,
  expectBoolean,
  expectNonEmptyString,
  expectObject,
  InvalidArgumentError,
  IoError,
  MASK_DECODER_FILE,
  ModelFormatError,
  optional,
  throwIfAborted,
} from "@pali/core";
import { type GGUFTensorInput, type GGUFValue, writeGGUF } from "@pali/gguf";
import { CONVERTER_VERSION } from "./convert.js";
import { NpzFile } from "./npz.js";
import { SEG_COUNT } from "./vocab.js";

export const MASK_DECODER_ARCH = "paligemma-mask-decoder";
// The file name is pali's naming (@pali/base), re-exported for convert's users.
export { MASK_DECODER_FILE };
/** big_vision's Decoder: residual blocks and stride-2 transposed convolutions (fixed by its code). */
const RES_BLOCKS = 2;
const UPSAMPLES = 4;
const GRID = 4;

export interface SegVaeOptions {
  /** overwrite an existing output */
  force?: boolean;
  signal?: AbortSignal;
}

export interface SegVaeResult {
  /** the GGUF written */
  path: string;
  codebookSize: number;
  embeddingLength: number;
  tensors: number;
}

/** One GGUF tensor from one npz array: the PyTorch shape reversed is the ggml shape, the bytes are the same. */
interface PlannedMaskTensor {
  name: string;
  source: string;
  /** PyTorch shape as the npz holds it */
  shape: number[];
}

/** The npz arrays the decoder needs, in the order of SPEC §8.3, with their GGUF names and expected shapes. */
export function planMaskDecoder(embeddingLength: number, channels: number): PlannedMaskTensor[] {
  const c = channels;
  const plan: PlannedMaskTensor[] = [
    { name: "mask.codebook", source: "_vq_vae._embedding", shape: [SEG_COUNT, embeddingLength] },
  ];
  const conv = (name: string, source: string, out: number, inp: number, k: number) => {
    plan.push({ name: `${name}.weight`, source: `${source}.weight`, shape: [out, inp, k, k] });
    plan.push({ name: `${name}.bias`, source: `${source}.bias`, shape: [out] });
  };
  conv("mask.dec.conv_in", "decoder.0", c, embeddingLength, 1);
  for (let r = 0; r < RES_BLOCKS; r++) {
    const s = `decoder.${2 + r}.net`;
    conv(`mask.dec.res.${r}.conv1`, `${s}.0`, c, c, 3);
    conv(`mask.dec.res.${r}.conv2`, `${s}.2`, c, c, 3);
    conv(`mask.dec.res.${r}.conv3`, `${s}.4`, c, c, 1);
  }
  let inp = c;
  for (let j = 0; j < UPSAMPLES; j++) {
    const out = c >> j;
    const s = `decoder.${2 + RES_BLOCKS + 2 * j}`;
    // ConvTranspose2d weights are [in, out, kH, kW]
    plan.push({ name: `mask.dec.up.${j}.weight`, source: `${s}.weight`, shape: [inp, out, 4, 4] });
    plan.push({ name: `mask.dec.up.${j}.bias`, source: `${s}.bias`, shape: [out] });
    inp = out;
  }
  conv("mask.dec.conv_out", `decoder.${2 + RES_BLOCKS + 2 * UPSAMPLES}`, 1, inp, 1);
  return plan;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Converts the segmentation VQ-VAE of big_vision (`vae-oid.npz`) into `<outDir>/mask-decoder-f32.gguf`,
 * checking every array's name and shape first. The encoder is not needed for inference and is skipped.
 */
export async function convertSegVae(npzPath: string, outDir: string, options: SegVaeOptions = {}): Promise<SegVaeResult> {
  expectNonEmptyString(npzPath, "npzPath");
  expectNonEmptyString(outDir, "outDir");
  expectObject(options, "options");
  const force = optional(options.force, false, (v) => expectBoolean(v, "force"));
  const signal = expectAbortSignal(options.signal, "signal");

  const npz = await NpzFile.open(npzPath);
  const codebook = npz.entries.get("_vq_vae._embedding");
  const first = npz.entries.get("decoder.0.weight");
  if (!codebook || !first) {
    throw new ModelFormatError(
      `${npzPath} has no ${codebook ? "decoder.0.weight" : "_vq_vae._embedding"} array: it is not big_vision's segmentation VAE (vae-oid.npz, SPEC §8.2)`,
    );
  }
  // Dimensions from the codebook and the first convolution; every other shape follows from them.
  const codebookArray = await npz.read("_vq_vae._embedding");
  const firstArray = await npz.read("decoder.0.weight");
  const [k, d] = codebookArray.shape;
  const c = firstArray.shape[0];
  if (codebookArray.shape.length !== 2 || k !== SEG_COUNT || d === undefined || d < 1)
    throw new ModelFormatError(
      `${npzPath}: _vq_vae._embedding has shape (${codebookArray.shape.join(", ")}); expected (${SEG_COUNT}, D), one row per <seg> token`,
    );
  if (c === undefined || c < 1 << (UPSAMPLES - 1) || c % (1 << (UPSAMPLES - 1)) !== 0)
    throw new ModelFormatError(
      `${npzPath}: decoder.0.weight has shape (${firstArray.shape.join(", ")}); expected (C, ${d}, 1, 1) with C a multiple of ${1 << (UPSAMPLES - 1)}`,
    );
  const plan = planMaskDecoder(d, c);
  const needed = new Set(plan.map((t) => t.source));
  for (const name of npz.names) {
    if (name.startsWith("decoder.") && !needed.has(name))
      throw new ModelFormatError(
        `${npzPath} has an unexpected decoder array ${name}: this is not the decoder pali knows (SPEC §8.2)`,
      );
  }
  const arrays = new Map<string, Float32Array>();
  for (const t of plan) {
    throwIfAborted(signal);
    if (!npz.entries.has(t.source)) throw new ModelFormatError(`${npzPath} has no array ${t.source} (needed for ${t.name})`);
    const array =
      t.source === "_vq_vae._embedding" ? codebookArray : t.source === "decoder.0.weight" ? firstArray : await npz.read(t.source);
    if (!sameShape(array.shape, t.shape))
      throw new ModelFormatError(
        `${npzPath}: ${t.source} has shape (${array.shape.join(", ")}), expected (${t.shape.join(", ")})`,
      );
    arrays.set(t.name, array.data);
  }

  const outStat = await stat(outDir).catch(() => undefined);
  if (!outStat?.isDirectory()) throw new IoError(`Output folder ${outDir} does not exist; create it first.`);
  const path = join(outDir, MASK_DECODER_FILE);
  if (!force && (await stat(path).catch(() => undefined)))
    throw new InvalidArgumentError(`${path} already exists; pass --force (force: true) to overwrite it`);

  const u32 = (value: number): GGUFValue => ({ type: "u32", value });
  const metadata: [string, GGUFValue][] = [
    ["general.architecture", { type: "str", value: MASK_DECODER_ARCH }],
    ["general.name", { type: "str", value: basename(npzPath).replace(/\.npz$/i, "") }],
    ["general.file_type", u32(0)],
    ["paligemma.mask.codebook_size", u32(k)],
    ["paligemma.mask.embedding_length", u32(d)],
    ["paligemma.mask.channels", u32(c)],
    ["paligemma.mask.res_block_count", u32(RES_BLOCKS)],
    ["paligemma.mask.upsample_count", u32(UPSAMPLES)],
    ["paligemma.mask.grid_size", u32(GRID)],
    ["paligemma.mask.mask_size", u32(GRID << UPSAMPLES)],
    ["paligemma.mask.source", { type: "str", value: basename(npzPath) }],
    ["paligemma.converter", { type: "str", value: CONVERTER_VERSION }],
  ];
  const tensors: GGUFTensorInput[] = plan.map((t) => {
    const data = arrays.get(t.name) as Float32Array;
    return {
      name: t.name,
      type: "f32",
      shape: [...t.shape].reverse(),
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
  });
  await writeGGUF(path, metadata, tensors, signal ? { signal } : {});
  return { path, codebookSize: k, embeddingLength: d, tensors: tensors.length };
}
