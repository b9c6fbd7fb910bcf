/**
 * The fuzz targets: each builds its mutant from a seed, runs the in-process TS checks on it (which must
 * throw nothing but PaliError), and says whether the native step should run and what it does.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  MaskDecoder,
  PaliError,
  parseGGUF,
  TextModel,
  VisionModel,
  validateDecoder,
  validateMaskDecoderFile,
  validateMmproj,
} from "@pali/core";
import { decodeImage, PaliGemma, preprocessImage } from "@pali/sdk";
import { Tokenizer } from "@pali/tokenizer";
import { mapGGUF } from "./gguf-map.mjs";
import { mutateGGUF, mutateHparams, mutateImage } from "./mutate.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const demo = join(repo, "models", "demo");
export const baseFiles = {
  decoder: join(demo, "pali-demo-q8_0.gguf"),
  mmproj: join(demo, "mmproj-pali-demo-f16.gguf"),
  mask: join(demo, "mask-decoder-f32.gguf"),
};

/** Bases read once per process. */
const bases = {};
function base(kind) {
  if (!bases[kind]) {
    const bytes = readFileSync(baseFiles[kind === "tokenizer" || kind === "hparams" ? "decoder" : kind]);
    bases[kind] = { bytes, map: mapGGUF(bytes) };
  }
  return bases[kind];
}

/** Small seed images made from a formula (PNG RGB, PNG grey+alpha, JPEG, WebP), so nothing is fetched. */
let images;
export async function imageBases() {
  if (images) return images;
  const { default: sharp } = await import("sharp");
  const w = 24;
  const rgb = Buffer.alloc(w * w * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37 + (i >> 5) * 11) & 0xff;
  const raw = { raw: { width: w, height: w, channels: 3 } };
  images = [
    await sharp(rgb, raw).png().toBuffer(),
    await sharp(rgb, raw).greyscale().ensureAlpha(0.5).png().toBuffer(),
    await sharp(rgb, raw).jpeg({ quality: 80 }).toBuffer(),
    await sharp(rgb, raw).webp().toBuffer(),
  ];
  return images;
}

/** Non-PaliError throws are the TS-side bugs the fuzzer looks for. */
function typed(error) {
  if (error instanceof PaliError) return error.code;
  throw Object.assign(new Error(`untyped error: ${error?.stack ?? error}`), { untyped: true });
}

const tokenizerFocus = /^tokenizer\./;
const validators = { decoder: validateDecoder, hparams: validateDecoder, mmproj: validateMmproj, mask: validateMaskDecoderFile };

/**
 * The TS step of one case. Returns { code } when the input was refused (a PaliError code), or
 * { native: true, bytes } when it should be loaded natively, or { ok: true } when it passed without.
 */
export async function tsStep(target, seed, nativeEvery) {
  if (target === "image") {
    const list = await imageBases();
    return { native: true, bytes: mutateImage(list[seed % list.length], seed) };
  }
  const { bytes: b, map } = base(target);
  const { bytes, dataOnly } =
    target === "hparams"
      ? mutateHparams(b, map, seed)
      : mutateGGUF(b, map, seed, target === "tokenizer" ? tokenizerFocus : undefined);
  let file;
  try {
    file = parseGGUF(bytes, `mutant-${target}-${seed}.gguf`);
  } catch (error) {
    return { code: typed(error), stage: "read" };
  }
  if (target === "tokenizer") {
    // The TS tokenizer, as a direct user of @pali/tokenizer builds it, on files the validator may refuse.
    try {
      const tok = Tokenizer.fromGGUF(file);
      for (const text of ["a red circle\n", "<loc0012><seg042> détecte ▁ \u{1F600}", ""]) tok.decode(tok.encode(text));
      tok.decode([0, 1, 2, 3, 255, 4000]);
    } catch (error) {
      typed(error);
    }
    try {
      validateDecoder(file);
    } catch (error) {
      return { code: typed(error), stage: "validate" };
    }
    return { native: seed % nativeEvery === 0, bytes };
  }
  try {
    validators[target](file);
  } catch (error) {
    return { code: typed(error), stage: "validate" };
  }
  // Mutants that change only tensor data need a native load only for a sample.
  return { native: !dataOnly || seed % nativeEvery === 0, bytes, dataOnly };
}

const codes = Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 128);

/** The native step: load what the validator accepted and run it a little. Must not crash the process. */
export async function nativeStep(target, path, bytes, seed, deepEvery) {
  try {
    if (target === "image") {
      const rgb = await decodeImage(bytes, 4096 * 4096);
      await preprocessImage(rgb, 112);
      return "ok";
    }
    if (target === "decoder" || target === "tokenizer" || target === "hparams") {
      // hparams mutants are all consistent decoders: run every other one through generation
      if (seed % (target === "hparams" ? 2 : deepEvery) === 0) {
        // the whole path: context, prefix batch, two decode steps
        const pg = await PaliGemma.load({ model: path, mmproj: baseFiles.mmproj, threads: 1, contextSize: 128 });
        try {
          const image = await pg.encodeImage({ data: new Uint8Array(112 * 112 * 3), width: 112, height: 112, channels: 3 });
          await pg.generate({ image, prompt: "caption en", maxTokens: 2 });
        } finally {
          await pg.dispose();
        }
        return "ok";
      }
      const m = await TextModel.load(path);
      m.info();
      m.tokenize("a red circle <loc0001>", { parseSpecial: true });
      m.dispose();
      return "ok";
    }
    if (target === "mmproj") {
      const v = await VisionModel.load(path, { gpu: false });
      const s = v.info().imageSize;
      if (s <= 448) await v.encode(new Float32Array(3 * s * s), 1, { threads: 1 });
      v.dispose();
      return "ok";
    }
    const d = await MaskDecoder.load(path, { gpu: false });
    const info = d.info();
    if (info.tokenCount === 16 && info.codebookSize === 128) await d.decode([codes], { threads: 1 });
    d.dispose();
    return "ok";
  } catch (error) {
    return typed(error);
  }
}
