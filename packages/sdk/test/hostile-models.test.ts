/**
 * Hostile edits of the committed demo GGUFs (issue 17): each used to abort the process inside ggml or
 * libllama; now the TS validators in @pali/core refuse them with a typed error before any native load.
 * The edits are made in memory with the fuzzer's GGUF map (fuzz/gguf-map.mjs), and also kept as the
 * regression cases the fuzzer found.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PaliGemma } from "../src/index.js";
import { fixtures } from "./helpers.js";

const demo = join(fixtures, "..", "demo");
const files = {
  model: join(demo, "pali-demo-q8_0.gguf"),
  mmproj: join(demo, "mmproj-pali-demo-f16.gguf"),
  mask: join(demo, "mask-decoder-f32.gguf"),
};

interface Mutant {
  bytes: Buffer;
  dataOnly: boolean;
}
interface MutateModule {
  mutateGGUF(base: Buffer, map: unknown, seed: number, focus?: RegExp): Mutant;
}
interface GGUFMapModule {
  TYPE: Record<string, number>;
  encodeEntry(key: string, type: number, value: Buffer): Buffer;
  addEntry(original: Buffer, map: unknown, entry: Buffer): Buffer;
  replaceEntry(original: Buffer, map: unknown, field: unknown, entry: Buffer): Buffer;
  mapGGUF(b: Buffer): {
    keys: { key: string; typeOffset: number; valueOffset: number; items?: { offset: number; length: number }[] }[];
  };
  keyField(
    map: unknown,
    key: string,
  ): { typeOffset: number; valueOffset: number; end: number; items?: { offset: number; length: number }[] };
}
let gguf: GGUFMapModule;
let mutate: MutateModule;
let dir: string;
const bytes: Record<keyof typeof files, Buffer> = { model: Buffer.alloc(0), mmproj: Buffer.alloc(0), mask: Buffer.alloc(0) };

beforeAll(async () => {
  const module = "../fuzz/gguf-map.mjs"; // plain JS shared with the fuzzer
  gguf = (await import(module)) as GGUFMapModule;
  const mutateModule = "../fuzz/mutate.mjs";
  mutate = (await import(mutateModule)) as MutateModule;
  dir = await mkdtemp(join(tmpdir(), "pali-hostile-"));
  for (const k of Object.keys(files) as (keyof typeof files)[]) bytes[k] = await readFile(files[k]);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PaliError);
  return (error as PaliError).code;
}

function syncCodeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PaliError);
    return (e as PaliError).code;
  }
  throw new Error("expected a PaliError");
}

/** The three reported edits, as functions of the original bytes. */
const edits = {
  blockCount(b: Buffer): Buffer {
    const out = Buffer.from(b);
    out.writeUInt32LE(0xffff_ffff, gguf.keyField(gguf.mapGGUF(b), "gemma.block_count").valueOffset);
    return out;
  },
  duplicateToken(b: Buffer): Buffer {
    const out = Buffer.from(b);
    const items = gguf.keyField(gguf.mapGGUF(b), "tokenizer.ggml.tokens").items ?? [];
    // two ordinary pieces of the same byte length: the second becomes a copy of the first
    for (let i = 300; i < items.length; i++) {
      const a = items[i] as { offset: number; length: number };
      const j = items.findIndex((s, n) => n > i && s.length === a.length);
      if (j < 0) continue;
      const dst = items[j] as { offset: number; length: number };
      b.copy(out, dst.offset, a.offset, a.offset + a.length);
      return out;
    }
    throw new Error("no two tokens of one length");
  },
  maskFlagAsI8(b: Buffer): Buffer {
    const out = Buffer.from(b);
    out.writeUInt32LE(1 /* i8 */, gguf.keyField(gguf.mapGGUF(b), "paligemma.has_mask_decoder").typeOffset);
    return out;
  },
};

async function write(name: string, content: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

describe("hostile model files", () => {
  it("the committed demo files pass the validators", () => {
    expect(validateDecoder(parseGGUF(bytes.model)).layers).toBe(3);
    expect(validateMmproj(parseGGUF(bytes.mmproj)).imageSize).toBe(112);
    expect(validateMaskDecoderFile(parseGGUF(bytes.mask)).maskSize).toBe(64);
  });

  it("gemma.block_count = 0xFFFFFFFF is ERR_MODEL_FORMAT, not libllama's n_layer assertion", async () => {
    const bad = edits.blockCount(bytes.model);
    expect(syncCodeOf(() => validateDecoder(parseGGUF(bad)))).toBe("ERR_MODEL_FORMAT");
    const path = await write("pali-demo-q8_0.gguf", bad);
    expect(await codeOf(TextModel.load(path))).toBe("ERR_MODEL_FORMAT");
    expect(await codeOf(PaliGemma.load({ model: path, mmproj: files.mmproj }))).toBe("ERR_MODEL_FORMAT");
  });

  it("a vocabulary string equal to another is ERR_MODEL_FORMAT, not libllama's token_to_id assertion", async () => {
    const bad = edits.duplicateToken(bytes.model);
    expect(() => validateDecoder(parseGGUF(bad))).toThrow(/repeats item/);
    const path = await write("dup-token.gguf", bad);
    expect(await codeOf(TextModel.load(path))).toBe("ERR_MODEL_FORMAT");
    expect(await codeOf(PaliGemma.load({ model: path, mmproj: files.mmproj }))).toBe("ERR_MODEL_FORMAT");
  });

  it("paligemma.has_mask_decoder stored as i8 is ERR_MODEL_FORMAT, not gguf_get_val_bool's assertion", async () => {
    const bad = edits.maskFlagAsI8(bytes.mmproj);
    expect(() => validateMmproj(parseGGUF(bad))).toThrow(/has_mask_decoder should be bool but is i8/);
    const path = await write("mmproj-i8.gguf", bad);
    expect(await codeOf(VisionModel.load(path))).toBe("ERR_MODEL_FORMAT");
    expect(await codeOf(PaliGemma.load({ model: files.model, mmproj: path }))).toBe("ERR_MODEL_FORMAT");
  });

  it("paligemma.has_mask_decoder = true (a bundled mask decoder, no longer supported) is refused with what to do", async () => {
    const bad = Buffer.from(bytes.mmproj);
    bad.writeUInt8(1, gguf.keyField(gguf.mapGGUF(bad), "paligemma.has_mask_decoder").valueOffset);
    expect(() => validateMmproj(parseGGUF(bad))).toThrow(/pali convert --seg-vae/);
    const path = await write("mmproj-bundled.gguf", bad);
    expect(await codeOf(VisionModel.load(path))).toBe("ERR_MODEL_FORMAT");
  });

  it("the mask decoder refuses a wrong shape before the native loader", async () => {
    const b = Buffer.from(bytes.mask);
    b.writeUInt32LE(7, gguf.keyField(gguf.mapGGUF(b), "paligemma.mask.grid_size").valueOffset);
    const path = await write("mask-decoder-f32.gguf", b);
    expect(await codeOf(MaskDecoder.load(path))).toBe("ERR_MODEL_FORMAT");
  });
});

describe("what ggml and libllama read differently from JS", () => {
  it("a vocabulary string with a NUL inside (libllama cuts it there: a duplicate) is ERR_MODEL_FORMAT", async () => {
    const out = Buffer.from(bytes.model);
    const items = gguf.keyField(gguf.mapGGUF(out), "tokenizer.ggml.tokens").items ?? [];
    const a = items[400] as { offset: number; length: number };
    const b = items.find((t, n) => n > 400 && t.length > a.length + 1) as { offset: number; length: number };
    bytes.model.copy(out, b.offset, a.offset, a.offset + a.length);
    out[b.offset + a.length] = 0;
    expect(() => validateDecoder(parseGGUF(out))).toThrow(/contains a NUL byte/);
    expect(await codeOf(TextModel.load(await write("nul-token.gguf", out)))).toBe("ERR_MODEL_FORMAT");
  });

  it("a key with a NUL inside (ggml would find it as the key before the NUL) is refused by the reader", () => {
    const entry = gguf.encodeEntry(
      "general.architecture\0x",
      gguf.TYPE.str as number,
      Buffer.from([5, 0, 0, 0, 0, 0, 0, 0, 108, 108, 97, 109, 97]),
    );
    const out = gguf.addEntry(bytes.model, gguf.mapGGUF(bytes.model), entry);
    expect(() => parseGGUF(out)).toThrow(/contains a NUL byte/);
  });

  it("a Gemma 2 decoder with fewer layers than its sliding-window pattern (no global layer) is refused", () => {
    // the demo decoder renamed to gemma2, key by key, with a pattern of 4 for its 3 layers
    let out: Buffer = bytes.model;
    const names = gguf.mapGGUF(out).keys.map((k) => k.key);
    for (const key of names) {
      if (key !== "general.architecture" && !key.startsWith("gemma.")) continue;
      const map = gguf.mapGGUF(out);
      const field = gguf.keyField(map, key) as { typeOffset: number; end: number };
      const value =
        key === "general.architecture"
          ? Buffer.concat([Buffer.from([6, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("gemma2")])
          : out.subarray(field.typeOffset + 4, field.end);
      const renamed = key.replace(/^gemma\./, "gemma2.");
      out = gguf.replaceEntry(out, map, field, gguf.encodeEntry(renamed, out.readUInt32LE(field.typeOffset), value));
    }
    const pattern = Buffer.alloc(4);
    pattern.writeUInt32LE(4);
    out = gguf.addEntry(
      out,
      gguf.mapGGUF(out),
      gguf.encodeEntry("gemma2.attention.sliding_window_pattern", gguf.TYPE.u32 as number, pattern),
    );
    expect(() => validateDecoder(parseGGUF(out))).toThrow(/needs at least 4 layers/);
  });
});

/**
 * Inputs the fuzz campaign found (fuzz/README.md), rebuilt from their seeds: each aborted the process before
 * the fix named beside it.
 */
const campaignFinds: { target: "decoder"; seed: number; fix: string }[] = [
  // general.alignment 1 or 2 added: ggml's reader accepts it, libllama's mmap load then asserts
  // "buffer pointer must be aligned" (ggml-backend.cpp); now every tensor must start 32-byte aligned.
  { target: "decoder", seed: 2705034936, fix: "not a multiple of 32" },
  { target: "decoder", seed: 2705038741, fix: "not a multiple of 32" },
];

describe("inputs found by the fuzz campaign", () => {
  it.each(campaignFinds)("$target seed $seed is refused ($fix)", async ({ seed, fix }) => {
    const base = bytes.model;
    const { bytes: mutant } = mutate.mutateGGUF(base, gguf.mapGGUF(base), seed);
    expect(() => validateDecoder(parseGGUF(mutant))).toThrow(new RegExp(fix));
    const path = await write(`found-${seed}.gguf`, mutant);
    expect(await codeOf(TextModel.load(path))).toBe("ERR_MODEL_FORMAT");
  });
});

describe("dispose() while the vision encoder runs", () => {
  it("VisionModel: the encode in flight fails with ERR_DISPOSED and dispose() does not throw", async () => {
    const vision = await VisionModel.load(files.mmproj);
    const size = vision.info().imageSize;
    const encoding = vision.encode(new Float32Array(3 * size * size));
    vision.dispose();
    vision.dispose();
    expect(vision.disposed).toBe(true);
    expect(await codeOf(encoding)).toBe("ERR_DISPOSED");
    expect(await codeOf(vision.encode(new Float32Array(3 * size * size)))).toBe("ERR_DISPOSED");
  });

  it("PaliGemma: encodeImage() and a task method in flight fail with ERR_DISPOSED; dispose() resolves", async () => {
    const image = await readFile(join(demo, "examples", "000.png"));
    for (const run of [(pg: PaliGemma) => pg.encodeImage(image), (pg: PaliGemma) => pg.caption(image)]) {
      const pg = await PaliGemma.load({ model: files.model, mmproj: files.mmproj, threads: 1 });
      const pending = run(pg);
      // let decoding and preprocessing finish so that the encoder is running
      await new Promise((r) => setTimeout(r, 5));
      await expect(pg.dispose()).resolves.toBeUndefined();
      expect(await codeOf(pending)).toBe("ERR_DISPOSED");
    }
  });
});
