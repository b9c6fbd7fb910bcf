/**
 * Cross-checks against llama.cpp itself: libllama's loader must accept what our writer produces, and our
 * reader must see in a file written by libllama's quantizer exactly what ggml's own gguf reader sees.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { quantizeTextModel, readGgufWithGgml, TextModel } from "@pali/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { metadataToJson, readGGUF } from "../src/index.js";
import { tinyGemma, writeTinyGemma } from "./helpers/tiny-gemma.js";

let dir: string;
let f32Path: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-gguf-llama-"));
  f32Path = join(dir, "tiny-gemma-f32.gguf");
  await writeTinyGemma(f32Path);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Our reader's view of a file, in the shape of ggml's JSON. */
async function ourView(path: string) {
  const file = await readGGUF(path);
  return {
    version: file.version,
    alignment: file.alignment,
    dataOffset: file.dataOffset,
    kv: [...file.metadata].map(([key, value]) => ({
      key,
      type: value.type,
      value: metadataToJson(value),
      ...(value.type === "arr" ? { itemType: value.itemType } : {}),
    })),
    tensors: file.tensors.map((t) => ({
      name: t.name,
      type: t.type.name,
      ne: [0, 1, 2, 3].map((i) => t.shape[i] ?? 1),
      offset: t.offset,
      size: t.byteSize,
    })),
  };
}

describe("libllama and ggml agree with @pali/gguf", () => {
  it("libllama loads a model written by our writer", async () => {
    const model = await TextModel.load(f32Path);
    try {
      const info = model.info();
      expect(info.embeddingLength).toBe(tinyGemma.embd);
      expect(info.layers).toBe(tinyGemma.layers);
      expect(info.vocabSize).toBe(270);
      expect(info.contextLength).toBe(tinyGemma.context);
      expect(model.meta("general.name")).toBe("tiny-gemma-test");
      expect(model.meta("gemma.attention.head_count_kv")).toBe("1");
      expect(model.meta("no.such.key")).toBeUndefined();
    } finally {
      model.dispose();
    }
    model.dispose(); // idempotent
    expect(() => model.info()).toThrow(expect.objectContaining({ code: "ERR_DISPOSED" }));
  });

  it("reads the f32 file exactly as ggml's reader does", async () => {
    expect(await ourView(f32Path)).toEqual(await readGgufWithGgml(f32Path));
  });

  for (const [type, weightType] of [
    ["q8_0", "q8_0"],
    ["q4_k_m", "q4_K"],
  ] as const) {
    it(`reads libllama's ${type} quantization exactly as ggml's reader does`, async () => {
      const out = join(dir, `tiny-gemma-${type}.gguf`);
      await quantizeTextModel(f32Path, out, { type, threads: 2 });
      const ours = await ourView(out);
      expect(ours).toEqual(await readGgufWithGgml(out));
      // The quantizer kept our metadata and changed the weight types.
      const keys = ours.kv.map((kv) => kv.key);
      expect(keys).toContain("tokenizer.ggml.tokens");
      expect(keys).toContain("general.quantization_version");
      expect(ours.tensors.find((t) => t.name === "blk.0.attn_q.weight")?.type).toBe(weightType);
      expect(ours.tensors.find((t) => t.name === "output_norm.weight")?.type).toBe("f32");
      // And libllama loads what it wrote.
      const model = await TextModel.load(out);
      expect(model.info().layers).toBe(tinyGemma.layers);
      model.dispose();
    });
  }

  it("reports a typed error when libllama cannot load a file", async () => {
    await expect(TextModel.load(join(dir, "missing.gguf"))).rejects.toMatchObject({ code: "ERR_IO" });
    await expect(quantizeTextModel(f32Path, join(dir, "x.gguf"), { type: "q3_xx" as never })).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
    });
  });
});
