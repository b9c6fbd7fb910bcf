import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  fileType,
  findMaskDecoderBeside,
  findMmprojBeside,
  findVisionLoraBeside,
  isModelFileName,
  loraFileNames,
  MASK_DECODER_FILE,
  mmprojCandidates,
  mmprojFileName,
  modelFileName,
  modelStem,
} from "../src/index.js";

let dir: string;
const touch = (name: string) => writeFile(join(dir, name), "");

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-model-files-"));
  for (const f of [
    "pg2-3b-224-q8_0.gguf",
    "mmproj-pg2-3b-224-q8_0.gguf",
    "mmproj-pg2-3b-224-f16.gguf",
    "mmproj-pg2-3b-224-f32.gguf",
    // another checkpoint whose name starts with the first one's
    "pg2-3b-224-mix-q4_k_m.gguf",
    "mmproj-pg2-3b-224-mix-bf16.gguf",
    MASK_DECODER_FILE,
    "lora-cats-f32.gguf",
    "mmproj-lora-cats-f32.gguf",
    "lora-dogs-f32.gguf",
  ])
    await touch(f);
  await mkdir(join(dir, "empty"));
});

afterAll(() => rm(dir, { recursive: true, force: true }));

describe("model file names", () => {
  it("names what pali convert writes, and reads the names back", () => {
    expect(modelFileName("pali-demo", "q8_0")).toBe("pali-demo-q8_0.gguf");
    expect(mmprojFileName("pali-demo", "f16")).toBe("mmproj-pali-demo-f16.gguf");
    expect(loraFileNames("cats")).toEqual({ lora: "lora-cats-f32.gguf", visionLora: "mmproj-lora-cats-f32.gguf" });
    expect(modelStem("/m/pali-demo-q8_0.gguf")).toBe("pali-demo");
    expect(modelStem("pg2-3b-224-mix-q4_k_m.gguf")).toBe("pg2-3b-224-mix");
    expect(modelStem("PG-BF16.GGUF")).toBe("PG");
    expect(modelStem("custom.gguf")).toBe("custom");
    expect(fileType("x/pali-demo-q8_0.gguf")).toBe("q8_0");
    expect(fileType("custom.gguf")).toBeUndefined();
  });

  it("tells a decoder from its companions when listing a folder", () => {
    expect(isModelFileName("pali-demo-q8_0.gguf")).toBe(true);
    for (const f of ["mmproj-pali-demo-f16.gguf", MASK_DECODER_FILE, "lora-cats-f32.gguf", "notes.txt"])
      expect(isModelFileName(f)).toBe(false);
  });
});

describe("pairing files beside a model", () => {
  it("takes the most precise image encoder named for exactly this model", async () => {
    expect(await mmprojCandidates(join(dir, "pg2-3b-224-q8_0.gguf"))).toEqual(
      ["mmproj-pg2-3b-224-f32.gguf", "mmproj-pg2-3b-224-f16.gguf", "mmproj-pg2-3b-224-q8_0.gguf"].map((f) => join(dir, f)),
    );
    // the "-mix" checkpoint's mmproj never pairs with the plain one, nor the other way round
    expect(await findMmprojBeside(join(dir, "pg2-3b-224-mix-q4_k_m.gguf"))).toBe(join(dir, "mmproj-pg2-3b-224-mix-bf16.gguf"));
    expect(await findMmprojBeside(join(dir, "empty", "pg2-3b-224-q8_0.gguf"))).toBeUndefined();
    expect(await findMmprojBeside(join(dir, "missing-folder", "m-f16.gguf"))).toBeUndefined();
  });

  it("finds the mask decoder and an adapter's vision part when they are there", async () => {
    expect(await findMaskDecoderBeside(join(dir, "pg2-3b-224-q8_0.gguf"))).toBe(join(dir, MASK_DECODER_FILE));
    expect(await findMaskDecoderBeside(join(dir, "empty", "m-q8_0.gguf"))).toBeUndefined();
    expect(await findVisionLoraBeside(join(dir, "lora-cats-f32.gguf"))).toBe(join(dir, "mmproj-lora-cats-f32.gguf"));
    expect(await findVisionLoraBeside(join(dir, "lora-dogs-f32.gguf"))).toBeUndefined();
  });
});
