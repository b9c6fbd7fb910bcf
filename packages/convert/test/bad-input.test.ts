/** pali convert on bad input: a typed error naming the problem, and never a partial file under a final name. */
import { cp, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const fixture = join(root, "models", "fixtures", "checkpoints", "pg1-224");

let dir: string;
let out: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-convert-bad-"));
  out = join(dir, "out");
  await mkdir(out);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A copy of the fixture checkpoint to damage. */
async function copyFixture(name: string): Promise<string> {
  const target = join(dir, name);
  await cp(fixture, target, { recursive: true });
  return target;
}

async function expectNoOutputs(): Promise<void> {
  expect((await readdir(out)).filter((f) => !f.startsWith("ok-"))).toEqual([]);
}

describe("convertCheckpoint on bad input", () => {
  it("a missing directory", async () => {
    await expect(convertCheckpoint({ input: join(dir, "nope"), outDir: out })).rejects.toMatchObject({
      code: "ERR_IO",
      message: expect.stringMatching(/not a directory/),
    });
  });

  it("a config that is not PaliGemma", async () => {
    const input = await copyFixture("llama");
    const config = JSON.parse(await readFile(join(input, "config.json"), "utf8"));
    await writeFile(join(input, "config.json"), JSON.stringify({ ...config, model_type: "llava" }));
    await expect(convertCheckpoint({ input, outDir: out })).rejects.toMatchObject({
      code: "ERR_UNSUPPORTED_MODEL",
      message: expect.stringMatching(/"llava", not "paligemma"/),
    });
    await writeFile(join(input, "config.json"), "{ not json");
    await expect(convertCheckpoint({ input, outDir: out })).rejects.toMatchObject({
      code: "ERR_MODEL_FORMAT",
      message: expect.stringMatching(/config.json/),
    });
  });

  it("a truncated safetensors file", async () => {
    const input = await copyFixture("truncated");
    await truncate(join(input, "model.safetensors"), 100_000);
    await expect(convertCheckpoint({ input, outDir: out })).rejects.toMatchObject({
      code: "ERR_MODEL_FORMAT",
      message: expect.stringMatching(/past the end|truncated/),
    });
    await expectNoOutputs();
  });

  it("a corrupt safetensors header", async () => {
    const input = await copyFixture("corrupt");
    const bytes = await readFile(join(input, "model.safetensors"));
    bytes.writeBigUInt64LE(1n << 50n, 0);
    await writeFile(join(input, "model.safetensors"), bytes);
    await expect(convertCheckpoint({ input, outDir: out })).rejects.toMatchObject({
      code: "ERR_MODEL_FORMAT",
      message: expect.stringMatching(/header claims/),
    });
  });

  it("a tensor with the wrong shape, and one with an unsupported dtype", async () => {
    const input = await copyFixture("shape");
    const config = JSON.parse(await readFile(join(input, "config.json"), "utf8"));
    config.text_config.intermediate_size = 256;
    await writeFile(join(input, "config.json"), JSON.stringify(config));
    await expect(convertCheckpoint({ input, outDir: out })).rejects.toMatchObject({
      code: "ERR_MODEL_FORMAT",
      message: expect.stringMatching(/gate_proj.weight has shape \[128, 64\], expected \[256, 64\]/),
    });

    const dtype = await copyFixture("dtype");
    const bytes = await readFile(join(dtype, "model.safetensors"));
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = bytes
      .subarray(8, 8 + headerLength)
      .toString("utf8")
      .replace('"dtype":"F16"', '"dtype":"I16"');
    bytes.write(header, 8, "utf8");
    await writeFile(join(dtype, "model.safetensors"), bytes);
    await expect(convertCheckpoint({ input: dtype, outDir: out })).rejects.toMatchObject({
      code: "ERR_MODEL_FORMAT",
      message: expect.stringMatching(/dtype I16/),
    });
  });

  it("a missing tokenizer", async () => {
    const input = await copyFixture("notok");
    await rm(join(input, "tokenizer.model"));
    await expect(convertCheckpoint({ input, outDir: out })).rejects.toMatchObject({
      code: "ERR_MODEL_FORMAT",
      message: expect.stringMatching(/no readable tokenizer.model/),
    });
  });

  it("an unwritable or missing output directory", async () => {
    await expect(convertCheckpoint({ input: fixture, outDir: join(dir, "missing-out") })).rejects.toMatchObject({
      code: "ERR_IO",
      message: expect.stringMatching(/does not exist/),
    });
    // /proc refuses new files even to root
    await expect(convertCheckpoint({ input: fixture, outDir: "/proc" })).rejects.toMatchObject({ code: "ERR_IO" });
  });

  it("an existing output without force, and an unknown type", async () => {
    const first = await convertCheckpoint({ input: fixture, outDir: out, name: "ok-exists" });
    const before = await readFile(first.model);
    await expect(convertCheckpoint({ input: fixture, outDir: out, name: "ok-exists" })).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringMatching(/already exists; pass --force/),
    });
    expect(Buffer.compare(await readFile(first.model), before)).toBe(0);
    await expect(convertCheckpoint({ input: fixture, outDir: out, type: "q3_k" as never })).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringMatching(
        /Expected one of f32, f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m, q6_k for type but received "q3_k"/,
      ),
    });
  });
});
