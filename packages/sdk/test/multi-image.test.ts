/**
 * Several images in one prompt (`image: [a, b, …]`) against transformers (models/fixtures/make_multi_image.py):
 * an NLVR2-like pair in both orders and four video-like frames on PG1/PG2-224 at f32, one by one (parallel 1)
 * and batched (parallel 4, all cases at once); then the inputs that must be refused.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PaliGemma } from "../src/index.js";
import { ConvertedFixtures, decisivePrefix, type ReferenceCase, readF32, references, relL2 } from "./helpers.js";

interface MultiImageCase extends Omit<ReferenceCase, "photo"> {
  checkpoint: string;
  case: string;
  photos: string[];
}

const fx = new ConvertedFixtures();
const converted = new Map<string, Promise<{ model: string; mmproj: string }>>();
beforeAll(() => fx.init());
afterAll(() => fx.cleanup());

function files(checkpoint: string) {
  const known = converted.get(checkpoint);
  if (known) return known;
  const p = fx.convert(checkpoint);
  converted.set(checkpoint, p);
  return p;
}

async function cases(checkpoint: string): Promise<MultiImageCase[]> {
  const all = JSON.parse(await readFile(join(references, "multi-image", "cases.json"), "utf8")) as { cases: MultiImageCase[] };
  return all.cases.filter((c) => c.checkpoint === checkpoint);
}

const photo = (name: string) => join(references, "images", `${name}.png`);

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** One case through nextTokenLogits, generate and score, checked with parity.test.ts's bounds. */
async function checkCase(pg: PaliGemma, c: MultiImageCase): Promise<void> {
  const label = `${c.checkpoint} ${c.case}`;
  const image = c.photos.map(photo);
  const logits = await pg.nextTokenLogits({ image, prompt: c.prompt });
  const want = await readF32(join(references, "multi-image", `logits-${c.checkpoint}-${c.case}.f32`));
  expect(relL2(logits, want), label).toBeLessThanOrEqual(1e-3);
  expect(maxAbs(logits, want), label).toBeLessThanOrEqual(1e-2);

  const result = await pg.generate({ image, prompt: c.prompt, maxTokens: c.greedy.length });
  const greedy = decisivePrefix(c.greedy, 0.05);
  expect(greedy.length, label).toBeGreaterThan(0);
  expect(result.tokens.slice(0, greedy.length), label).toEqual(greedy);
  expect(result.timings.prefillTokens, label).toBe(c.imageTokens + c.prefixIds.length);

  const score = await pg.score({ image, prompt: c.prompt, suffix: c.suffix });
  expect(score.tokens, label).toEqual(c.suffixIds);
  expect(maxAbs(score.logprobs, c.suffixLogprobs), label).toBeLessThanOrEqual(5e-3);
}

for (const checkpoint of ["pg1-224", "pg2-224"]) {
  describe(`${checkpoint}: several images in one prompt match transformers`, () => {
    // one by one, then every case at once on a batched engine
    for (const parallel of [1, 4]) {
      it(`parallel ${parallel}`, async () => {
        await using pg = await PaliGemma.load({
          ...(await files(checkpoint)),
          kvCacheType: "f32",
          flashAttention: false,
          threads: 2,
          maxImages: 4,
          parallel,
        });
        expect(pg.info.maxImages).toBe(4);
        const all = await cases(checkpoint);
        if (parallel === 1) for (const c of all) await checkCase(pg, c);
        else await Promise.all(all.map((c) => checkCase(pg, c)));
      });
    }
  });
}

describe("image arrays", () => {
  it("take encodeImage() tensors as elements, read the images in order, and run the text tasks", async () => {
    await using pg = await PaliGemma.load({ ...(await files("pg1-224")), threads: 2, maxImages: 2, parallel: 1 });
    const prompt = "caption en";
    const paths = [photo("astronaut"), photo("coffee")];
    const byPath = await pg.nextTokenLogits({ image: paths, prompt });
    const mixed = await pg.nextTokenLogits({ image: [await pg.encodeImage(paths[0] as string), paths[1] as string], prompt });
    expect(maxAbs(mixed, byPath)).toBe(0);
    const swapped = await pg.nextTokenLogits({ image: [paths[1] as string, paths[0] as string], prompt });
    expect(maxAbs(swapped, byPath)).toBeGreaterThan(1e-3);
    // a one-element array is the single image
    const one = await pg.nextTokenLogits({ image: [paths[0] as string], prompt });
    expect(maxAbs(one, await pg.nextTokenLogits({ image: paths[0] as string, prompt }))).toBe(0);
    const caption = await pg.caption(paths, { maxTokens: 4 });
    expect(caption.result.tokens).toEqual((await pg.generate({ image: paths, prompt, maxTokens: 4 })).tokens);
  });

  it("refuse empty arrays, missing elements, too many images and foreign tensors (ERR_INVALID_ARGUMENT)", async () => {
    await using pg = await PaliGemma.load({ ...(await files("pg1-224")), threads: 2, parallel: 1 });
    const a = photo("astronaut");
    const invalid = { code: "ERR_INVALID_ARGUMENT" };
    await expect(pg.generate({ image: [], prompt: "caption en" })).rejects.toMatchObject(invalid);
    await expect(pg.score({ image: [], prompt: "caption en", suffix: "x" })).rejects.toMatchObject(invalid);
    await expect(pg.nextTokenLogits({ image: [], prompt: "caption en" })).rejects.toMatchObject(invalid);
    await expect(pg.stream({ image: [], prompt: "caption en" }).next()).rejects.toMatchObject(invalid);
    await expect(pg.generate({ image: [a, null as unknown as string], prompt: "caption en" })).rejects.toMatchObject({
      ...invalid,
      message: expect.stringContaining("image[1]"),
    });
    // loaded for one image (the default maxImages)
    await expect(pg.generate({ image: [a, a], prompt: "caption en" })).rejects.toMatchObject({
      ...invalid,
      message: expect.stringContaining("maxImages: 2"),
    });
    await expect(pg.score({ image: [a, a], prompt: "caption en", suffix: "x" })).rejects.toMatchObject(invalid);
    const wrong = (await pg.encodeImage(a)).reshape([128, 128]);
    await expect(pg.generate({ image: [a, wrong], prompt: "caption en" })).rejects.toMatchObject(invalid);
    await expect(PaliGemma.load({ ...(await files("pg1-224")), maxImages: 0 })).rejects.toMatchObject(invalid);
    // the model still serves a plain request
    expect((await pg.generate({ image: a, prompt: "caption en", maxTokens: 2 })).tokens.length).toBe(2);
  });

  it("say how many positions k images need when they do not fit (ERR_CONTEXT_OVERFLOW), batched or not", async () => {
    for (const parallel of [1, 2]) {
      await using pg = await PaliGemma.load({
        ...(await files("pg1-224")),
        threads: 2,
        maxImages: 4,
        contextSize: 800,
        parallel,
      });
      const a = photo("astronaut");
      const overflow = { code: "ERR_CONTEXT_OVERFLOW", message: expect.stringContaining("4 images (4 × 256 image tokens)") };
      await expect(pg.generate({ image: [a, a, a, a], prompt: "caption en" })).rejects.toMatchObject(overflow);
      await expect(pg.score({ image: [a, a, a, a], prompt: "caption en", suffix: "x" })).rejects.toMatchObject(overflow);
      await expect(pg.nextTokenLogits({ image: [a, a, a, a], prompt: "caption en" })).rejects.toMatchObject(overflow);
      await expect(pg.generate({ image: [a, a, a, a], prompt: "caption en" })).rejects.toThrow(/need 1029 positions/);
      // three fit: 768 image tokens + 5 + 2 ≤ 800
      const r = await pg.generate({ image: [a, a, a], prompt: "caption en", maxTokens: 3 });
      expect(r.tokens.length).toBeGreaterThan(0);
      expect(r.timings.prefillTokens).toBe(773);
    }
  });
});
