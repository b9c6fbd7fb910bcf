/**
 * The segmentation mask decoder against big_vision's own decoder (models/fixtures/vqvae: seeded random
 * weights with the real parameter names, 8 code sequences, the 64×64 outputs of get_reconstruct_masks).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MaskDecoder } from "../src/index.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const fixtures = join(repo, "models", "fixtures", "vqvae");

// @pali/convert depends on @pali/core, so core cannot depend on it: the converter is loaded from its sources.
interface ConvertModule {
  convertSegVae(npz: string, outDir: string, options?: { force?: boolean }): Promise<{ path: string }>;
}
interface NpzModule {
  readNpy(path: string): Promise<{ shape: number[]; data: Float32Array }>;
}
const convertModule = join(repo, "packages", "convert", "src", "seg-vae.ts");
const npzModule = join(repo, "packages", "convert", "src", "npz.ts");

const codes = JSON.parse(readFileSync(join(fixtures, "codes.json"), "utf8")) as number[][];
let dir: string;
let path: string;
let expected: Float32Array;
let decoder: MaskDecoder;

function maxError(actual: Float32Array, reference: Float32Array): number {
  let max = 0;
  for (let i = 0; i < reference.length; i++) max = Math.max(max, Math.abs((actual[i] as number) - (reference[i] as number)));
  return max;
}

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, "expected a rejection").toBeDefined();
  expect((error as { code?: string }).code).toBe(code);
  if (message) expect((error as Error).message).toMatch(message);
}

/** A copy of the converted file with `find` replaced by `replace` (same length) in its header. */
function patched(name: string, find: Buffer, replace: Buffer): string {
  const bytes = readFileSync(path);
  const at = bytes.indexOf(find);
  expect(at).toBeGreaterThan(0);
  replace.copy(bytes, at);
  const out = join(dir, name);
  writeFileSync(out, bytes);
  return out;
}

function u32Key(key: string, value: number): Buffer {
  const b = Buffer.alloc(key.length + 8);
  b.write(key, 0, "latin1");
  b.writeUInt32LE(4, key.length); // GGUF type u32
  b.writeUInt32LE(value, key.length + 4);
  return b;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "pali-mask-"));
  const { convertSegVae } = (await import(convertModule)) as ConvertModule;
  const { readNpy } = (await import(npzModule)) as NpzModule;
  path = (await convertSegVae(join(fixtures, "vae-random.npz"), dir)).path;
  const reference = await readNpy(join(fixtures, "expected.npy"));
  expect(reference.shape).toEqual([8, 64, 64]);
  expected = reference.data;
  decoder = await MaskDecoder.load(path, { gpu: false });
});

afterAll(() => {
  decoder?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("MaskDecoder", () => {
  it("reports the decoder's dimensions", () => {
    const info = decoder.info();
    expect(info).toMatchObject({
      codebookSize: 128,
      embeddingLength: 512,
      tokenCount: 16,
      gridSize: 4,
      maskSize: 64,
      device: "CPU",
    });
    expect(info.sizeBytes).toBeGreaterThan(4_000_000);
  });

  it("matches big_vision's decoder on the 8 fixture code sequences within 1e-5 (f32)", async () => {
    const masks = await decoder.decode(codes);
    expect(masks).toHaveLength(8);
    const all = new Float32Array(8 * 64 * 64);
    masks.forEach((m, i) => {
      expect(m).toHaveLength(64 * 64);
      all.set(m, i * 64 * 64);
    });
    const error = maxError(all, expected);
    console.log(`mask decoder: max |pali - big_vision| = ${error.toExponential(2)} over ${all.length} values`);
    expect(error).toBeLessThan(1e-5);
    // the layout is the fixture's [y][x]: a transposed grid would be far off (README: 0.42)
    for (const i of [2, 3]) {
      const m = masks[i] as Float32Array;
      const transposed = Float32Array.from(m, (_, k) => m[(k % 64) * 64 + Math.floor(k / 64)] as number);
      expect(maxError(transposed, expected.subarray(i * 4096, (i + 1) * 4096))).toBeGreaterThan(1e-2);
    }
  });

  it("gives each sequence the same mask alone and in batches of more than one graph (16)", async () => {
    const many = Array.from({ length: 21 }, (_, i) => codes[(i * 5) % 8] as number[]);
    const batch = await decoder.decode(many);
    for (let i = 0; i < many.length; i++) {
      const k = (i * 5) % 8;
      expect(maxError(batch[i] as Float32Array, expected.subarray(k * 4096, (k + 1) * 4096))).toBeLessThan(1e-5);
    }
    const [alone] = await decoder.decode([codes[3] as number[]], { threads: 1 });
    expect(maxError(alone as Float32Array, expected.subarray(3 * 4096, 4 * 4096))).toBeLessThan(1e-5);
    expect(await decoder.decode([])).toEqual([]);
  });

  it("runs concurrent decodes on one decoder", async () => {
    const results = await Promise.all([decoder.decode(codes.slice(0, 4)), decoder.decode(codes.slice(4))]);
    const all = new Float32Array(8 * 4096);
    for (const [i, m] of results.flat().entries()) all.set(m, i * 4096);
    expect(maxError(all, expected)).toBeLessThan(1e-5);
  });

  it("rejects bad code sequences with ERR_INVALID_ARGUMENT", async () => {
    const good = codes[0] as number[];
    await rejectsWith(
      decoder.decode([[...good.slice(0, 15), 128]]),
      "ERR_INVALID_ARGUMENT",
      /integer between 0 and 127 for codes\[0\]\[15\] but received 128/,
    );
    await rejectsWith(decoder.decode([good, [-1, ...good.slice(1)]]), "ERR_INVALID_ARGUMENT", /codes\[1\]\[0\] but received -1/);
    await rejectsWith(decoder.decode([[0.5, ...good.slice(1)]]), "ERR_INVALID_ARGUMENT", /received 0.5/);
    await rejectsWith(
      decoder.decode([good.slice(1)]),
      "ERR_INVALID_ARGUMENT",
      /array of 16 integers for codes\[0\] but received array of length 15/,
    );
    await rejectsWith(decoder.decode(good as never), "ERR_INVALID_ARGUMENT", /codes\[0\]/);
    await rejectsWith(decoder.decode("0" as never), "ERR_INVALID_ARGUMENT", /array of code sequences for codes/);
    await rejectsWith(decoder.decode([good], { threads: -1 }), "ERR_INVALID_ARGUMENT", /threads/);
  });

  it("rejects files that are not a valid mask decoder with ERR_MODEL_FORMAT, naming what is wrong", async () => {
    const notGguf = join(dir, "not.gguf");
    writeFileSync(notGguf, "definitely not a GGUF file");
    await rejectsWith(MaskDecoder.load(notGguf, { gpu: false }), "ERR_MODEL_FORMAT", /not a GGUF model/);
    const size = patched("bad-size.gguf", u32Key("paligemma.mask.mask_size", 64), u32Key("paligemma.mask.mask_size", 63));
    await rejectsWith(MaskDecoder.load(size, { gpu: false }), "ERR_MODEL_FORMAT", /mask_size is 63/);
    const name = patched("bad-name.gguf", Buffer.from("mask.dec.up.3.bias"), Buffer.from("mask.dec.up.3.bia5"));
    await rejectsWith(MaskDecoder.load(name, { gpu: false }), "ERR_MODEL_FORMAT", /missing tensor mask\.dec\.up\.3\.bias/);
    const channels = patched("bad-channels.gguf", u32Key("paligemma.mask.channels", 128), u32Key("paligemma.mask.channels", 64));
    await rejectsWith(
      MaskDecoder.load(channels, { gpu: false }),
      "ERR_MODEL_FORMAT",
      /mask\.dec\.conv_in\.weight has shape \[1, 1, 512, 128\], expected \[1, 1, 512, 64\]/,
    );
    const truncated = join(dir, "truncated.gguf");
    const whole = readFileSync(path);
    writeFileSync(truncated, whole.subarray(0, whole.length - 1000));
    await rejectsWith(
      MaskDecoder.load(truncated, { gpu: false }),
      "ERR_MODEL_FORMAT",
      /tensor mask\.dec\.\S+ \(\d+ bytes at byte \d+\) extends past the end of the \d+-byte file/,
    );
    await rejectsWith(MaskDecoder.load(join(dir, "missing.gguf"), { gpu: false }), "ERR_IO", /could not open/i);
    await expect(MaskDecoder.load("")).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
  });

  it("is disposable once, and a disposed decoder fails with ERR_DISPOSED", async () => {
    const d = await MaskDecoder.load(path, { gpu: false });
    d.dispose();
    d.dispose();
    expect(d.disposed).toBe(true);
    await rejectsWith(d.decode(codes), "ERR_DISPOSED");
    expect(() => d.info()).toThrow(expect.objectContaining({ code: "ERR_DISPOSED" }));
  });

  it("lets a decode in flight finish when disposed during it", async () => {
    const d = await MaskDecoder.load(path, { gpu: false });
    const pending = d.decode(codes);
    d.dispose();
    expect(d.disposed).toBe(true);
    await rejectsWith(d.decode(codes), "ERR_DISPOSED");
    const masks = await pending;
    const all = new Float32Array(8 * 4096);
    for (const [i, m] of masks.entries()) all.set(m, i * 4096);
    expect(maxError(all, expected)).toBeLessThan(1e-5);
    d.dispose();
  });
});
