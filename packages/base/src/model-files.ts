/**
 * How pali names its model files and finds the ones that belong together, in one place for `pali convert`,
 * the Hub cache, the SDK and the CLI:
 *   <name>-<type>.gguf              the decoder (libllama)
 *   mmproj-<name>-<type>.gguf       its image encoder (SigLIP + projector), beside it
 *   mask-decoder-f32.gguf           the segmentation VQ-VAE decoder, shared by every model in a folder
 *   lora-<name>-f32.gguf            a decoder LoRA adapter; mmproj-lora-<name>-f32.gguf beside it is its vision part
 * Only names and directory listings here: whether two files really pair is checked from their GGUF headers
 * by the SDK before native code sees them.
 */
import { access, readdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export const MMPROJ_PREFIX = "mmproj-";
export const MASK_DECODER_FILE = "mask-decoder-f32.gguf";
const MASK_DECODER_PREFIX = "mask-decoder-";
const LORA_PREFIX = "lora-";

/** The weight type a file name ends in: f32, f16, bf16 or a ggml quantization (q8_0, q4_k_m, …). */
const TYPE = "(f32|f16|bf16|q\\d[a-z0-9_]*)";
const TYPE_SUFFIX = new RegExp(`-${TYPE}\\.gguf$`, "i");
const TYPE_ONLY = new RegExp(`^${TYPE}\\.gguf$`, "i");

/**
 * When several image encoders sit beside one model, the most precise one is used: the image tower is
 * small next to the decoder, and a lower type is a choice the caller makes by naming the file.
 */
const mmprojPreference = ["f32", "f16", "bf16", "q8_0", "q4_0"];

export function modelFileName(name: string, type: string): string {
  return `${name}-${type}.gguf`;
}

export function mmprojFileName(name: string, type: string): string {
  return `${MMPROJ_PREFIX}${name}-${type}.gguf`;
}

/** The adapter files for `name`: the decoder's, and the vision tower's found beside it by its prefix. */
export function loraFileNames(name: string): { lora: string; visionLora: string } {
  const lora = `${LORA_PREFIX}${name}-f32.gguf`;
  return { lora, visionLora: `${MMPROJ_PREFIX}${lora}` };
}

/** `<name>` of `<name>-<type>.gguf` (the whole stem when the name has no type suffix). */
export function modelStem(modelPath: string): string {
  const file = basename(modelPath);
  return TYPE_SUFFIX.test(file) ? file.replace(TYPE_SUFFIX, "") : file.replace(/\.gguf$/i, "");
}

/** The weight type in a file name (`q8_0` for `pali-demo-q8_0.gguf`), if it has one. */
export function fileType(path: string): string | undefined {
  return TYPE_SUFFIX.exec(basename(path))?.[1]?.toLowerCase();
}

/** Whether a file name is a decoder (not an mmproj, a mask decoder or an adapter): for listing a folder's models. */
export function isModelFileName(file: string): boolean {
  return (
    /\.gguf$/i.test(file) &&
    !file.startsWith(MMPROJ_PREFIX) &&
    !file.startsWith(MASK_DECODER_PREFIX) &&
    !file.startsWith(LORA_PREFIX)
  );
}

async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}

async function existing(path: string): Promise<string | undefined> {
  return access(path).then(
    () => path,
    () => undefined,
  );
}

function preference(file: string): number {
  const i = mmprojPreference.indexOf(fileType(file) ?? "");
  return i < 0 ? mmprojPreference.length : i;
}

/** The image encoders named for this model that sit beside it, the preferred one first. */
export async function mmprojCandidates(modelPath: string): Promise<string[]> {
  const dir = dirname(modelPath);
  const prefix = `${MMPROJ_PREFIX}${modelStem(modelPath)}-`;
  return (
    (await listDir(dir))
      // exactly mmproj-<name>-<type>.gguf: "pg2-3b" must not take the mmproj of "pg2-3b-mix"
      .filter((f) => f.startsWith(prefix) && TYPE_ONLY.test(f.slice(prefix.length)))
      .sort((a, b) => preference(a) - preference(b) || a.localeCompare(b))
      .map((f) => join(dir, f))
  );
}

/** `mmproj-<name>-<type>.gguf` beside `<name>-<type>.gguf` (any type), if there is one. */
export async function findMmprojBeside(modelPath: string): Promise<string | undefined> {
  return (await mmprojCandidates(modelPath))[0];
}

/** `mask-decoder-f32.gguf` (what `pali convert --seg-vae` writes) beside the model, if there is one. */
export async function findMaskDecoderBeside(modelPath: string): Promise<string | undefined> {
  return existing(join(dirname(modelPath), MASK_DECODER_FILE));
}

/** `mmproj-<file>` beside a decoder adapter (its vision part), if there is one. */
export async function findVisionLoraBeside(loraPath: string): Promise<string | undefined> {
  return existing(join(dirname(loraPath), `${MMPROJ_PREFIX}${basename(loraPath)}`));
}
