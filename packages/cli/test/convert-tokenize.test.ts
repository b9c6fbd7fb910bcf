import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pali, root } from "./cli.js";

const fixture = join(root, "models", "fixtures", "checkpoints", "pg2-224");

let out: string;
let model: string;
let mmproj: string;
beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), "pali-cli-convert-"));
  const result = pali("convert", fixture, "-o", out, "--type", "q8_0", "--mmproj-type", "q8_0", "--json");
  expect(result.status, result.stderr).toBe(0);
  ({ model, mmproj } = JSON.parse(result.stdout));
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

describe("pali convert", () => {
  it("--json prints the two paths and nothing else, and the files exist", () => {
    expect(model).toBe(join(out, "pg2-224-q8_0.gguf"));
    expect(mmproj).toBe(join(out, "mmproj-pg2-224-q8_0.gguf"));
    const info = JSON.parse(pali("info", "-m", model, "--json").stdout).model;
    expect(info).toMatchObject({ architecture: "gemma2", tensorTypes: { q8_0: 15, f32: 9 } });
    expect(info.paligemma).toMatchObject({
      version: 2,
      image_size: 224,
      image_token_count: 256,
      image_token_id: 5152,
      loc_token_count: 1024,
      seg_token_count: 128,
    });
  });

  it("prints progress as plain lines when piped, and refuses to overwrite without --force", () => {
    const again = pali("convert", fixture, "-o", out, "--type", "q8_0", "--mmproj-type", "q8_0");
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already exists; pass --force/);
    const forced = pali("convert", fixture, "-o", out, "--type", "q8_0", "--mmproj-type", "q8_0", "--force");
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/^\s*\d+% model token_embd.weight/m);
    expect(forced.stderr).toMatch(/100% mmproj/);
    expect(forced.stdout).toMatch(/model: {2}.*pg2-224-q8_0.gguf/);
  });

  it("rejects a missing input folder and an unknown type with usage errors", () => {
    expect(pali("convert", "-o", out).stderr).toMatch(/needs the checkpoint folder/);
    const badType = pali("convert", fixture, "-o", out, "--type", "q2_k", "--json");
    expect(badType.status).toBe(2);
    expect(JSON.parse(badType.stdout).error.code).toBe("ERR_INVALID_ARGUMENT");
  });
});

describe("pali tokenize", () => {
  it("prints ids and pieces as JSON, with loc tokens whole and text after -- kept verbatim", () => {
    const r = pali("tokenize", "-m", model, "--json", "--", "detect cat<loc0001> --json");
    expect(r.status, r.stderr).toBe(0);
    const { ids, pieces } = JSON.parse(r.stdout);
    expect(pieces.join("")).toBe("detect▁cat<loc0001>▁--json");
    expect(ids).toContain(4001);
    expect(ids.length).toBe(pieces.length);
  });

  it("matches control tokens only with --special", () => {
    const plain = JSON.parse(pali("tokenize", "-m", model, "--json", "--", "<bos>").stdout);
    const special = JSON.parse(pali("tokenize", "-m", model, "--json", "--special", "--", "<bos>").stdout);
    expect(plain.ids.length).toBeGreaterThan(1);
    expect(special.ids).toEqual([2]);
  });

  it("says what is missing", () => {
    expect(pali("tokenize", "--", "x").stderr).toMatch(/needs a model/);
    expect(pali("tokenize", "-m", model).stderr).toMatch(/needs the text/);
  });
});

describe("pali convert --seg-vae", () => {
  it("converts big_vision's VQ-VAE npz into the shared mask decoder file", () => {
    const npz = join(root, "models", "fixtures", "vqvae", "vae-random.npz");
    const r = pali("convert", "--seg-vae", npz, "-o", out, "--json");
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ maskDecoder: join(out, "mask-decoder-f32.gguf") });
    const info = JSON.parse(pali("info", "-m", join(out, "mask-decoder-f32.gguf"), "--json").stdout).model;
    expect(info.architecture).toBe("paligemma-mask-decoder");
    expect(pali("convert", "--seg-vae", npz, "-o", out).status).toBe(2); // exists, no --force
  });
});

describe("pali detect / caption", () => {
  it("writes an annotated PNG of the original size, and refuses bad labels and an unwritable --out", async () => {
    const image = join(root, "models", "fixtures", "references", "images", "coffee.png");
    const png = join(out, "annotated.png");
    const r = pali("detect", "-m", model, "-i", image, "-l", "cat ; dog", "--max-tokens", "8", "--out", png, "--json");
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ detections: expect.any(Array), out: png });
    const { default: sharp } = (await import("sharp")) as unknown as { default: typeof import("sharp") };
    expect(await sharp(png).metadata()).toMatchObject({ format: "png", width: 300, height: 200 });
    expect(pali("detect", "-m", model, "-i", image).stderr).toMatch(/needs what to look for/);
    const bad = pali(
      "detect",
      "-m",
      model,
      "-i",
      image,
      "-l",
      "cat",
      "--out",
      "/proc/annotated.png",
      "--max-tokens",
      "2",
      "--json",
    );
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout).error.code).toBe("ERR_IO");
    const caption = pali("caption", "-m", model, "-i", image, "--max-tokens", "3", "--json");
    expect(caption.status, caption.stderr).toBe(0);
    expect(JSON.parse(caption.stdout)).toMatchObject({ text: expect.any(String), finishReason: "length" });
  });
});
