/**
 * The tiny PaliGemma 1 and 2 fixtures (made by transformers, models/fixtures/make_checkpoints.py) through
 * the converter: libllama loads every model file, our loader every mmproj, the f32 values match what
 * transformers stored, and quantized files equal what libllama's own quantizer makes from the same weights.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { quantizeTextModel, TextModel, VisionModel } from "@pali/core";
import { readGGUF, readTensorData } from "@pali/gguf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../src/index.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "models", "fixtures", "checkpoints");
type Expected = Record<string, Record<string, { count: number; sum: number; sumsq: number; first: number[] }>>;

let out: string;
let expected: Expected;
beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), "pali-convert-"));
  expected = JSON.parse(await readFile(join(fixtures, "expected-f32.json"), "utf8")) as Expected;
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

async function f32Values(path: string, name: string): Promise<Float32Array> {
  const file = await readGGUF(path);
  const t = file.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name} in ${path}`);
  const bytes = await readTensorData(file, t);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

for (const checkpoint of ["pg1-224", "pg2-224", "pg1-448", "pg2-896"]) {
  describe(`convert ${checkpoint}`, () => {
    it("writes f32 files whose every tensor holds exactly what transformers stored", async () => {
      const result = await convertCheckpoint({
        input: join(fixtures, checkpoint),
        outDir: out,
        type: "f32",
        mmprojType: "f32",
        name: `${checkpoint}`,
      });
      const want = expected[checkpoint] ?? {};
      const names = [...(await readGGUF(result.model)).tensors, ...(await readGGUF(result.mmproj)).tensors].map((t) => t.name);
      expect(new Set(names)).toEqual(new Set(Object.keys(want)));
      for (const [name, stats] of Object.entries(want)) {
        const values = await f32Values(name.startsWith("v.") || name.startsWith("mm.") ? result.mmproj : result.model, name);
        expect(values.length, name).toBe(stats.count);
        expect(Array.from(values.subarray(0, 4)), name).toEqual(stats.first.map((v) => Math.fround(v)));
        let sum = 0;
        let sumsq = 0;
        for (const v of values) {
          sum += v;
          sumsq += v * v;
        }
        expect(sum, name).toBeCloseTo(stats.sum, 6);
        expect(sumsq, name).toBeCloseTo(stats.sumsq, 6);
      }
      const model = await TextModel.load(result.model);
      const info = model.info();
      model.dispose();
      const vision = await VisionModel.load(result.mmproj);
      const vinfo = vision.info();
      vision.dispose();
      const resolution = Number(checkpoint.split("-")[1]);
      expect(vinfo).toMatchObject({
        imageSize: resolution,
        patchSize: 14,
        imageTokenCount: (resolution / 14) ** 2,
        embeddingLength: 32,
        projectionDim: 64,
      });
      expect(info).toMatchObject({ embeddingLength: 64, layers: 2, vocabSize: 5184 });
    });
  });
}

describe("quantized conversions", () => {
  for (const checkpoint of ["pg1-224", "pg2-224"]) {
    for (const type of ["f16", "q8_0", "q4_k_m"] as const) {
      it(`${checkpoint} at ${type} equals libllama's quantization of the f32 conversion, tensor for tensor`, async () => {
        const f32 = await convertCheckpoint({
          input: join(fixtures, checkpoint),
          outDir: out,
          type: "f32",
          name: `${checkpoint}-ref`,
          force: true,
        });
        const ours = await convertCheckpoint({
          input: join(fixtures, checkpoint),
          outDir: out,
          type,
          mmprojType: type === "f16" ? "f16" : "q8_0",
          name: `${checkpoint}-q`,
          force: true,
        });
        const theirs = join(out, `${checkpoint}-llama-${type}.gguf`);
        await quantizeTextModel(f32.model, theirs, { type, threads: 2 });
        const a = await readGGUF(ours.model);
        const b = await readGGUF(theirs);
        // libllama writes tensors in its own order; compare by name.
        const types = (f: typeof a) => Object.fromEntries(f.tensors.map((t) => [t.name, t.type.name]));
        expect(types(a)).toEqual(types(b));
        for (const t of a.tensors) {
          const other = b.tensors.find((x) => x.name === t.name);
          if (!other) throw new Error(`libllama's file has no ${t.name}`);
          expect(Buffer.compare(await readTensorData(a, t), await readTensorData(b, other)), t.name).toBe(0);
        }
        const model = await TextModel.load(ours.model);
        expect(model.meta("general.file_type")).toBe(b.metadata.get("general.file_type")?.value.toString());
        model.dispose();
        const vision = await VisionModel.load(ours.mmproj);
        expect(vision.info().layers).toBe(2);
        vision.dispose();
      });
    }
  }
});

describe("model metadata", () => {
  it("carries the tokenizer, the paligemma keys and PG2's global attention and softcaps", async () => {
    const pg2 = await convertCheckpoint({
      input: join(fixtures, "pg2-448"),
      outDir: out,
      type: "f16",
      name: "meta",
      force: true,
    });
    const file = await readGGUF(pg2.model);
    const get = (k: string) => file.metadata.get(k)?.value;
    expect(get("general.architecture")).toBe("gemma2");
    expect(get("paligemma.version")).toBe(2);
    expect(get("paligemma.image_size")).toBe(448);
    expect(get("paligemma.image_token_count")).toBe(1024);
    expect(get("paligemma.image_token_id")).toBe(5152);
    expect(get("paligemma.loc_token_start")).toBe(4000);
    expect(get("paligemma.seg_token_start")).toBe(5024);
    expect(get("paligemma.source")).toBe("pg2-448");
    expect(get("gemma2.final_logit_softcapping")).toBe(30);
    expect(get("gemma2.attn_logit_softcapping")).toBe(50);
    expect(get("gemma2.attention.sliding_window")).toBe(1 << 20);
    expect(get("gemma2.attention.sliding_window_pattern")).toBeUndefined();
    expect(get("paligemma.trained_sliding_window")).toBe(16384);
    expect(get("tokenizer.ggml.add_space_prefix")).toBe(false);
    const tokens = get("tokenizer.ggml.tokens") as string[];
    expect(tokens.length).toBe(5184);
    expect(tokens[5152]).toBe("<image>");
    expect(tokens[4000]).toBe("<loc0000>");
    expect(tokens[5183]).toBe("[PAD5183]");
    const mmproj = await readGGUF(pg2.mmproj);
    expect(mmproj.metadata.get("clip.projector_type")?.value).toBe("paligemma");
    expect(mmproj.metadata.has("paligemma.has_mask_decoder")).toBe(false); // the mask decoder has its own file
  });
});
