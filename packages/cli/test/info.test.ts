import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeGGUF } from "@pali/gguf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Io, main } from "../src/index.js";

const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");

let dir: string;
let modelPath: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-cli-"));
  modelPath = join(dir, "m.gguf");
  await writeGGUF(
    modelPath,
    [
      ["general.architecture", { type: "str", value: "gemma" }],
      ["general.name", { type: "str", value: "unit" }],
      ["paligemma.image_size", { type: "u32", value: 224 }],
      ["paligemma.image_token_id", { type: "u32", value: 257152 }],
      ["tokenizer.ggml.tokens", { type: "arr", itemType: "str", value: Array.from({ length: 100 }, (_, i) => `t${i}`) }],
    ],
    [
      { name: "a", type: "f32", shape: [32, 2], data: new Uint8Array(256) },
      { name: "b", type: "q8_0", shape: [64], data: new Uint8Array(68) },
      { name: "c", type: "q8_0", shape: [32], data: new Uint8Array(34) },
    ],
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[]) {
  let stdout = "";
  let stderr = "";
  const io: Io = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

describe("pali info", () => {
  it("--json lists the CPU backend, its features, versions and threads", async () => {
    const { code, stdout, stderr } = await run(["info", "--json"]);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    const info = JSON.parse(stdout);
    expect(info.devices.some((d: { backend: string }) => d.backend === "CPU")).toBe(true);
    expect(Object.keys(info.cpuFeatures).length).toBeGreaterThan(0);
    expect(info.llamaCpp).toMatch(/^v\d/);
    expect(info.defaultThreads).toBeGreaterThan(0);
  });

  it("describes a model file: architecture, tensors, sizes, types and paligemma keys", async () => {
    const { code, stdout } = await run(["info", "-m", modelPath, "--json"]);
    expect(code).toBe(0);
    const { model } = JSON.parse(stdout);
    expect(model).toMatchObject({
      architecture: "gemma",
      name: "unit",
      tensorCount: 3,
      tensorBytes: 256 + 68 + 34,
      parameterCount: 64 + 64 + 32,
      tensorTypes: { f32: 1, q8_0: 2 },
      paligemma: { image_size: 224, image_token_id: 257152 },
    });
    // long arrays are summarized, not dumped
    expect(model.metadata["tokenizer.ggml.tokens"]).toMatchObject({ type: "str", length: 100 });

    const human = await run(["info", "-m", modelPath]);
    expect(human.stdout).toMatch(/architecture: gemma/);
    expect(human.stdout).toMatch(/tensors: 3/);
    expect(human.stdout).toMatch(/q8_0×2/);
    expect(human.stdout).toMatch(/image_size = 224/);
  });

  it("reports a damaged model as ERR_MODEL_FORMAT, as JSON on stdout with --json", async () => {
    const bad = join(dir, "bad.gguf");
    await writeFile(bad, Buffer.from("GGUF\x02\x00\x00\x00"));
    const { code, stdout, stderr } = await run(["info", "-m", bad, "--json"]);
    expect(code).toBe(1);
    expect(JSON.parse(stdout).error).toMatchObject({ code: "ERR_MODEL_FORMAT", message: expect.stringMatching(/version 2/) });
    expect(stderr).toMatch(/\[ERR_MODEL_FORMAT\]/);

    const missing = await run(["info", "-m", join(dir, "missing.gguf")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ERR_IO/);
  });

  it("rejects unknown commands and options with usage hints", async () => {
    const unknown = await run(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown command "frobnicate".*pali --help/);
    const badOption = await run(["info", "--bogus"]);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toMatch(/--help/);
    expect((await run(["--help"])).stdout).toMatch(/Usage: pali <command>/);
    expect((await run(["info", "--help"])).stdout).toMatch(/Usage: pali info/);
  });

  it("the installed command prints only JSON on stdout", () => {
    const result = spawnSync(process.execPath, [bin, "info", "-m", modelPath, "--json"], { encoding: "utf8" });
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout).model.architecture).toBe("gemma");
  });
});
