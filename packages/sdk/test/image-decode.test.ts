/**
 * decodeImage against transformers' load_image (PIL open + exif_transpose + convert("RGB")) on the committed
 * images of models/fixtures/image-decode: ICC-profiled JPEG and PNG (stored values, not colour-converted),
 * CMYK JPEG, 16-bit PNG, palette PNG with transparency, EXIF orientation 6; and the opt-in conversion
 * against PIL ImageCms. Measured with sharp 0.34.5 and Pillow 12.3: every decode path is bit-exact (JPEGs
 * too: both use libjpeg-turbo's default islow IDCT and fancy upsampling); JPEGs get ±2 for other libjpeg builds.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeImage, preprocessImage, type RgbImage } from "../src/index.js";
import { fixtures } from "./helpers.js";

const dir = join(fixtures, "image-decode");

interface Case {
  file: string;
  mode: string;
  width: number;
  height: number;
  rgb: string;
  converted?: string;
  siglip224?: string;
}
const { cases } = JSON.parse(await readFile(join(dir, "cases.json"), "utf8")) as { cases: Record<string, Case> };

/** Largest and mean |a − b| in 0–255 units. */
function diff(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / b.length };
}

/** Why a bound at all: other libjpeg builds (or a non-islow IDCT) may round a few values differently. */
const tolerance = (file: string) => (file.endsWith(".jpg") ? { max: 2, mean: 0.05 } : { max: 0, mean: 0 });

async function oracle(name: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(join(dir, name)));
}

describe("decodeImage matches transformers' load_image", () => {
  for (const [name, c] of Object.entries(cases)) {
    it(`${name} (${c.file}, PIL mode ${c.mode})`, async () => {
      const got = await decodeImage(join(dir, c.file));
      expect([got.width, got.height]).toEqual([c.width, c.height]);
      const { max, mean } = diff(got.rgb, await oracle(c.rgb));
      const bound = tolerance(c.file);
      expect(max).toBeLessThanOrEqual(bound.max);
      expect(mean).toBeLessThanOrEqual(bound.mean);
    });
  }

  it("reads bytes the same as paths, and colorManagement: 'stored' is the default", async () => {
    const c = cases["adobe-rgb-jpg"] as Case;
    const bytes = new Uint8Array(await readFile(join(dir, c.file)));
    const fromPath = await decodeImage(join(dir, c.file));
    expect(diff((await decodeImage(bytes)).rgb, fromPath.rgb).max).toBe(0);
    expect(diff((await decodeImage(bytes, undefined, { colorManagement: "stored" })).rgb, fromPath.rgb).max).toBe(0);
  });
});

describe("colorManagement: 'convert'", () => {
  for (const [name, c] of Object.entries(cases)) {
    if (c.converted === undefined) continue;
    it(`${name}: the embedded profile applied, as PIL ImageCms does (within 1), far from the stored values`, async () => {
      const got = await decodeImage(join(dir, c.file), undefined, { colorManagement: "convert" });
      const vsCms = diff(got.rgb, await oracle(c.converted as string));
      expect(vsCms.max).toBeLessThanOrEqual(1); // both lcms2; measured max 1, mean ≤ 0.02
      expect(vsCms.mean).toBeLessThanOrEqual(0.05);
      // Wide-gamut profiles move saturated colours a lot: measured mean 7.8–9.6, max 112–139.
      expect(diff(got.rgb, await oracle(c.rgb)).mean).toBeGreaterThan(5);
    });
  }

  it("CMYK without a profile goes through sharp's CMYK profile, not PIL's naive inversion", async () => {
    const c = cases["cmyk-jpg"] as Case;
    const got = await decodeImage(join(dir, c.file), undefined, { colorManagement: "convert" });
    expect(diff(got.rgb, await oracle(c.rgb)).mean).toBeGreaterThan(5); // measured 25
  });

  it("refuses an unknown mode, naming the choices", async () => {
    await expect(
      decodeImage(join(dir, "adobe-rgb.jpg"), undefined, { colorManagement: "srgb" as "convert" }),
    ).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT", message: expect.stringContaining("stored, convert") as unknown });
  });
});

describe("SiglipImageProcessor at 224", () => {
  for (const [name, c] of Object.entries(cases)) {
    if (c.siglip224 === undefined) continue;
    it(`${name}: decode + resize + normalize equals transformers' pixel_values (within 1/255)`, async () => {
      const pixels = await preprocessImage(await decodeImage(join(dir, c.file)), 224);
      const want: RgbImage = await decodeImage(join(dir, c.siglip224 as string)); // PIL's resized uint8, lossless
      const n = 224 * 224;
      let max = 0;
      for (let ch = 0; ch < 3; ch++) {
        for (let i = 0; i < n; i++) {
          const v = ((want.rgb[i * 3 + ch] as number) / 255 - 0.5) / 0.5;
          max = Math.max(max, Math.abs(v - (pixels[ch * n + i] as number)));
        }
      }
      expect(max).toBeLessThanOrEqual(2 / 255 / 2 + 1e-6); // 1/255 in [0,1] is 2/255 in [-1,1], as in parity.test.ts
    });
  }
});

describe("PaliGemma.load({ colorManagement })", () => {
  it("encodes the stored values by default and the sRGB conversion with 'convert'", async () => {
    const { PaliGemma } = await import("../src/index.js");
    const demo = join(fixtures, "..", "demo", "pali-demo-q8_0.gguf");
    const c = cases["display-p3-png"] as Case;
    const raw = (name: string) => readFile(join(dir, name)).then((b) => new Uint8Array(b));
    const stored = { data: await raw(c.rgb), width: c.width, height: c.height, channels: 3 as const };
    const converted = { ...stored, data: await raw(c.converted as string) };
    const file = join(dir, c.file);
    await using pg = await PaliGemma.load({ model: demo, threads: 1 });
    await using cm = await PaliGemma.load({ model: demo, threads: 1, colorManagement: "convert" });
    const same = (a: Float32Array, b: Float32Array) => a.every((v, i) => v === b[i]);
    expect(same((await pg.encodeImage(file)).data, (await pg.encodeImage(stored)).data)).toBe(true);
    const viaConvert = (await cm.encodeImage(file)).data;
    expect(same(viaConvert, (await pg.encodeImage(stored)).data)).toBe(false);
    // ImageCms and libvips' conversions agree within 1/255, so the embeddings are close, not equal.
    const reference = (await cm.encodeImage(converted)).data;
    const scale = Math.max(...reference.map(Math.abs));
    expect(Math.max(...viaConvert.map((v, i) => Math.abs(v - (reference[i] as number)))) / scale).toBeLessThan(0.05);
    await expect(PaliGemma.load({ model: demo, colorManagement: "srgb" as never })).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
    });
  });
});
