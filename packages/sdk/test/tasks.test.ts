/** The task methods end to end on a tiny model: prompts in, typed results out (random weights: the content is noise). */
import { mkdir, symlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PaliGemma } from "../src/index.js";
import { ConvertedFixtures, fixtures, references } from "./helpers.js";

const fx = new ConvertedFixtures();
const photo = join(references, "images", "coffee.png"); // 300×200
let pg: PaliGemma;
let maskDecoderPath: string;

beforeAll(async () => {
  await fx.init();
  const files = await fx.convert("pg1-224", "f16", "f16");
  const { convertSegVae } = await import("@pali/convert");
  // not beside the model: that would load it by default (the demo test covers that case)
  const vaeDir = join(fx.dir, "vae");
  await mkdir(vaeDir);
  maskDecoderPath = (await convertSegVae(join(fixtures, "vqvae", "vae-random.npz"), vaeDir, { force: true })).path;
  pg = await PaliGemma.load({ ...files, maskDecoder: maskDecoderPath, threads: 2 });
});
afterAll(async () => {
  await pg?.dispose();
  await fx.cleanup();
});

describe("task methods", () => {
  it("caption, ask and ocr send PaliGemma's prompts and return the decoded text", async () => {
    const caption = await pg.caption(photo, { maxTokens: 4 });
    const direct = await pg.generate({ image: photo, prompt: "caption en", maxTokens: 4 });
    expect(caption.result.tokens).toEqual(direct.tokens);
    expect(caption.text).toBe(direct.text.trim());
    const ask = await pg.ask(photo, "what is this?", { lang: "de", maxTokens: 4 });
    expect(ask.result.tokens).toEqual(
      (await pg.generate({ image: photo, prompt: "answer de what is this?", maxTokens: 4 })).tokens,
    );
    const ocr = await pg.ocr(photo, { maxTokens: 3 });
    expect(ocr.result.tokens).toEqual((await pg.generate({ image: photo, prompt: "ocr", maxTokens: 3 })).tokens);
  });

  it("detect decodes the answer into boxes in original-image pixels", async () => {
    const r = await pg.detect(photo, ["cat", "dog"], { maxTokens: 12 });
    const direct = await pg.generate({ image: photo, prompt: "detect cat ; dog", maxTokens: 12 });
    expect(r.result.tokens).toEqual(direct.tokens);
    for (const d of r.detections) {
      expect(d.box.x2).toBeLessThanOrEqual(300);
      expect(d.box.y2).toBeLessThanOrEqual(200);
      expect(d.score).toBeGreaterThan(0);
    }
    await expect(pg.detect(photo, [])).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(pg.detect(photo, ["cat ; dog"])).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(pg.detect(photo, ["<loc0001>"])).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    const embeddings = await pg.encodeImage(photo);
    await expect(pg.detect(embeddings, ["cat"])).rejects.toMatchObject({
      code: "ERR_UNSUPPORTED_MODEL",
      message: expect.stringMatching(/imageWidth/),
    });
    const viaTensor = await pg.detect(embeddings, ["cat", "dog"], { imageWidth: 300, imageHeight: 200, maxTokens: 12 });
    expect(viaTensor.result.tokens).toEqual(r.result.tokens);
  });

  it("segment returns masks at image size when the model draws any, and needs the mask decoder", async () => {
    const r = await pg.segment(photo, "the cup", { maxTokens: 24 });
    expect(Array.isArray(r.segmentations)).toBe(true);
    for (const s of r.segmentations) {
      expect(s.mask.binary.length).toBe(300 * 200);
      expect(s.mask.rle.size).toEqual([200, 300]);
    }
    await using plain = await PaliGemma.load({ model: pg.info.model, mmproj: pg.info.mmproj, threads: 2 });
    await expect(plain.segment(photo, "the cup")).rejects.toMatchObject({
      code: "ERR_UNSUPPORTED_MODEL",
      message: expect.stringMatching(/--seg-vae/),
    });
    // mask-decoder-f32.gguf beside the model is found without the option
    const beside = join(fx.dir, "beside");
    await mkdir(beside);
    for (const f of [pg.info.model, pg.info.mmproj, maskDecoderPath]) await symlink(f, join(beside, basename(f)));
    await using found = await PaliGemma.load({ model: join(beside, basename(pg.info.model)), threads: 2 });
    const again = await found.segment(photo, "the cup", { maxTokens: 24 });
    expect(again.text).toBe(r.text);
    expect(again.segmentations.map((x) => x.mask.rle)).toEqual(r.segmentations.map((x) => x.mask.rle));
  });
});
