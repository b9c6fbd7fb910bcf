/**
 * The engine against transformers on the committed tiny fixtures (models/fixtures/references): pixels,
 * image features, first-step logits, greedy tokens and suffix log-probabilities, PG1 and PG2 at 224,
 * 448 and 896 with f32 files, PG1/PG2-224 at q8_0, and image encoders at f16, bf16 and q8_0.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeImage, PaliGemma, preprocessImage } from "../src/index.js";
import { ConvertedFixtures, decisivePrefix, maxRelative, readF32, referenceCases, references, relL2 } from "./helpers.js";

const fx = new ConvertedFixtures();
beforeAll(() => fx.init());
afterAll(() => fx.cleanup());

describe("pixels", () => {
  for (const [size, photos] of [
    [224, ["astronaut", "camera", "coffee", "cat-rgba"]],
    [448, ["astronaut"]],
    [896, ["astronaut"]],
  ] as const) {
    for (const photo of photos) {
      it(`${photo} at ${size} is PIL's bicubic resize (within 1/255)`, async () => {
        const pixels = await preprocessImage(await decodeImage(join(references, "images", `${photo}.png`)), size);
        const pil = await decodeImage(join(references, `pixels-${size}-${photo}.png`));
        let max = 0;
        for (let c = 0; c < 3; c++) {
          for (let i = 0; i < size * size; i++) {
            const want = ((pil.rgb[i * 3 + c] as number) / 255 - 0.5) / 0.5;
            max = Math.max(max, Math.abs(want - (pixels[c * size * size + i] as number)));
          }
        }
        expect(max).toBeLessThanOrEqual(2 / 255 / 2); // 1/255 in [0,1] is 2/255 in [-1,1]
      });
    }
  }
});

for (const checkpoint of ["pg1-224", "pg2-224", "pg1-448", "pg2-448", "pg1-896", "pg2-896"]) {
  describe(`${checkpoint} at f32`, () => {
    it("matches transformers: features, first-step logits, greedy tokens, suffix log-probabilities", async () => {
      const files = await fx.convert(checkpoint);
      await using pg = await PaliGemma.load({ ...files, kvCacheType: "f32", flashAttention: false, threads: 2 });
      for (const c of await referenceCases(checkpoint)) {
        const label = `${checkpoint} ${c.photo} "${c.prompt}"`;
        const features = await pg.encodeImage(join(references, "images", `${c.photo}.png`));
        const wantFeatures = await readF32(join(references, checkpoint, `features-${c.photo}.f32`));
        expect(maxRelative(features.data, wantFeatures), label).toBeLessThanOrEqual(1e-4);

        if (c.prompt === PROMPT0) {
          const logits = await pg.nextTokenLogits({ image: features, prompt: c.prompt });
          expect(relL2(logits, await readF32(join(references, checkpoint, `logits-${c.photo}.f32`))), label).toBeLessThanOrEqual(
            1e-3,
          );
        }

        const result = await pg.generate({ image: features, prompt: c.prompt, maxTokens: c.greedy.length });
        const want = decisivePrefix(c.greedy, 0.05);
        expect(result.tokens.slice(0, want.length), label).toEqual(want);

        const score = await pg.score({ image: features, prompt: c.prompt, suffix: c.suffix });
        expect(score.tokens, label).toEqual(c.suffixIds);
        for (const [i, lp] of c.suffixLogprobs.entries())
          expect(Math.abs((score.logprobs[i] as number) - lp), `${label} token ${i}`).toBeLessThanOrEqual(5e-3);
      }
    });
  });
}

const PROMPT0 = "caption en";

it("a SigLIP head width that is not a multiple of 16 (So400m's 72; here 18) matches transformers", async () => {
  // pali pads such heads with zero columns for ggml's tiled kernels (models/fixtures/make_head_width.py)
  const files = await fx.convert("pg1-224-hd18");
  await using pg = await PaliGemma.load({ ...files, threads: 2 });
  const features = await pg.encodeImage(join(references, "images", "astronaut.png"));
  const want = await readF32(join(references, "pg1-224-hd18", "features-astronaut.f32"));
  expect(maxRelative(features.data, want)).toBeLessThanOrEqual(1e-4);
});

// Two attention paths in the SigLIP graph: the scores materialized in row blocks (GPU backends), and ggml's f32
// flash attention (the CPU backend, from 256 patches).
for (const checkpoint of ["pg1-896", "pg1-224-hd18"]) {
  it(`${checkpoint}: blocked and flash attention in the image encoder both match transformers`, async () => {
    const files = await fx.convert(checkpoint);
    await using pg = await PaliGemma.load({ ...files, threads: 2 });
    const image = join(references, "images", "astronaut.png");
    const want = await readF32(join(references, checkpoint, "features-astronaut.f32"));
    const before = process.env.PALI_VISION_FLASH;
    try {
      process.env.PALI_VISION_FLASH = "0";
      const blocked = (await pg.encodeImage(image)).data;
      process.env.PALI_VISION_FLASH = "1";
      const flash = (await pg.encodeImage(image)).data;
      expect(maxRelative(blocked, want)).toBeLessThanOrEqual(1e-4);
      expect(maxRelative(flash, want)).toBeLessThanOrEqual(1e-4);
      expect(relL2(flash, blocked)).toBeLessThanOrEqual(1e-5);
    } finally {
      if (before === undefined) delete process.env.PALI_VISION_FLASH;
      else process.env.PALI_VISION_FLASH = before;
    }
  });
}

// Reduced-precision image encoders: f16 and bf16 keep 11 and 8 significant bits of each weight, q8_0 about 8 per
// block of 32. Measured relL2 on the four photos: f16 2.8–3.5e-4, bf16 3.3–4.0e-3, q8_0 1.1–1.3e-2; the
// bounds leave 2.5–3× room.
for (const [mmprojType, bound] of [
  ["f16", 1e-3],
  ["bf16", 1e-2],
  ["q8_0", 3e-2],
] as const) {
  it(`pg1-224 with a ${mmprojType} mmproj: image features within relL2 ${bound} of transformers`, async () => {
    const files = await fx.convert("pg1-224", "q8_0", mmprojType);
    await using pg = await PaliGemma.load({ ...files, threads: 2 });
    for (const c of await referenceCases("pg1-224")) {
      const features = await pg.encodeImage(join(references, "images", `${c.photo}.png`));
      const want = await readF32(join(references, "pg1-224", `features-${c.photo}.f32`));
      expect(relL2(features.data, want), `${c.photo}`).toBeLessThanOrEqual(bound);
    }
  });
}

for (const checkpoint of ["pg1-224", "pg2-224"]) {
  it(`${checkpoint} at q8_0: greedy identical on decisive steps, log-probabilities within 0.25`, async () => {
    const files = await fx.convert(checkpoint, "q8_0", "q8_0");
    await using pg = await PaliGemma.load({ ...files, threads: 2 });
    for (const c of await referenceCases(checkpoint)) {
      const image = join(references, "images", `${c.photo}.png`);
      const result = await pg.generate({ image, prompt: c.prompt, maxTokens: c.greedy.length });
      const want = decisivePrefix(c.greedy, 0.5);
      expect(result.tokens.slice(0, want.length)).toEqual(want);
      const score = await pg.score({ image, prompt: c.prompt, suffix: c.suffix });
      for (const [i, lp] of c.suffixLogprobs.entries())
        expect(Math.abs((score.logprobs[i] as number) - lp)).toBeLessThanOrEqual(0.25);
    }
  });
}

for (const checkpoint of ["pg1-224", "pg2-224"]) {
  it(`${checkpoint}: beam search finds transformers' best hypothesis`, async () => {
    const files = await fx.convert(checkpoint);
    await using pg = await PaliGemma.load({ ...files, kvCacheType: "f32", flashAttention: false, threads: 2, maxBeams: 3 });
    const { readFile } = await import("node:fs/promises");
    const beams = JSON.parse(await readFile(join(references, checkpoint, "beams.json"), "utf8")) as {
      cases: { photo: string; prompt: string; beams: number; maxTokens: number; tokens: number[]; score: number }[];
    };
    for (const c of beams.cases) {
      const r = await pg.generate({
        image: join(references, "images", `${c.photo}.png`),
        prompt: c.prompt,
        maxTokens: c.maxTokens,
        beams: c.beams,
      });
      expect(r.tokens, `${c.photo} "${c.prompt}"`).toEqual(c.tokens);
      const sum = r.logprobs.reduce((a, b) => a + b, 0);
      expect(sum / r.tokens.length).toBeCloseTo(c.score, 2);
    }
  });
}
