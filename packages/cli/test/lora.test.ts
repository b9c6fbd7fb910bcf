/** `pali convert --lora` and `--lora FILE[:SCALE]` on run, score and the tasks, on the tiny PEFT fixtures. */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertF32, fixtures, pali } from "./cli.js";

const photo = join(fixtures, "references", "images", "coffee.png");

let out: string;
let model: string;
let lora: string;
beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), "pali-cli-lora-"));
  model = convertF32("pg1-224", out);
  // the base is the converted model this time (its mmproj found beside it)
  const converted = pali("convert", "--lora", join(fixtures, "lora", "pg1-224-full"), "--base", model, "-o", out, "--json");
  expect(converted.status, converted.stderr).toBe(0);
  const files = JSON.parse(converted.stdout);
  expect(files).toEqual({
    lora: join(out, "lora-pg1-224-full-f32.gguf"),
    visionLora: join(out, "mmproj-lora-pg1-224-full-f32.gguf"),
    matrices: 27,
  });
  lora = files.lora;
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

describe("pali --lora", () => {
  it("score with the adapter gives transformers + peft's log-probabilities; at scale 0, the base model's", async () => {
    const ref = JSON.parse(await readFile(join(fixtures, "lora", "pg1-224-full", "cases.json"), "utf8")).cases.find(
      (c: { photo: string; prompt: string }) => c.photo === "coffee" && c.prompt === "caption en",
    );
    const suffix = "a cat<loc0012><loc0345> on the sofa";
    const run = (...extra: string[]) =>
      pali("score", "-m", model, "-i", photo, "-p", "caption en", "--suffix", suffix, "--json", ...extra);
    const withAdapter = run("--lora", lora);
    expect(withAdapter.status, withAdapter.stderr).toBe(0);
    const got = JSON.parse(withAdapter.stdout).logprobs as number[];
    // f16 KV cache (the CLI's default): within 2e-2 of the f32 reference
    for (const [i, lp] of (ref.suffixLogprobs as number[]).entries())
      expect(Math.abs((got[i] as number) - lp)).toBeLessThan(2e-2);
    const off = JSON.parse(run("--lora", `${lora}:0`).stdout).logprobs as number[];
    for (const [i, lp] of (ref.baseSuffixLogprobs as number[]).entries())
      expect(Math.abs((off[i] as number) - lp)).toBeLessThan(2e-2);
  });

  it("caption with and without the adapter differ, as the fixture's greedy answers do", () => {
    const plain = pali("caption", "-m", model, "-i", photo, "--json");
    const adapted = pali("caption", "-m", model, "-i", photo, "--lora", lora, "--json");
    expect(plain.status, plain.stderr).toBe(0);
    expect(adapted.status, adapted.stderr).toBe(0);
    expect(JSON.parse(adapted.stdout).text).not.toBe(JSON.parse(plain.stdout).text);
  });

  it("bad adapters fail with one line naming the problem and its code, no stack", () => {
    const missing = pali("run", "-m", model, "-i", photo, "-p", "caption en", "--lora", join(out, "nope.gguf"));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/nope\.gguf.*\[ERR_IO\]\n$/);
    const notAdapter = pali("convert", "--lora", join(fixtures, "checkpoints", "pg1-224"), "--base", model, "-o", out);
    expect(notAdapter.status).toBe(1);
    expect(notAdapter.stderr).toMatch(/not a PEFT adapter folder.*\[ERR_MODEL_FORMAT\]\n$/);
    const noBase = pali("convert", "--lora", join(fixtures, "lora", "pg1-224-full"), "-o", out);
    expect(noBase.status).toBe(2);
    expect(noBase.stderr).toMatch(/--base/);
  });
});
