/**
 * The seeded CI slice of the fuzz campaign (fuzz/README.md): a few thousand mutants of the demo GGUFs and
 * of small images through the TS validators, the tokenizer and the native loaders, in long-lived workers.
 * No input may crash a worker or throw anything but a PaliError.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = join(dirname(fileURLToPath(import.meta.url)), "..", "fuzz", "run.mjs");
const exec = promisify(execFile);

interface Summary {
  targets: Record<string, { executions: number; accepted: number; native: number; nativeResults: Record<string, number> }>;
  crashes: { target: string; seed: number; how: string; file: string }[];
  hangs: unknown[];
  bugs: { target: string; seed: number; message: string }[];
  executions: number;
  wallSeconds: number;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-fuzz-test-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function fuzz(args: string[], env: Record<string, string> = {}): Promise<Summary> {
  const { stdout } = await exec(process.execPath, [run, "--crashes", dir, ...args], {
    env: { ...process.env, ...env, PALI_FUZZ_TMP: dir },
    maxBuffer: 1 << 24,
  }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? "" }));
  return JSON.parse(stdout) as Summary;
}

describe("fuzzing (seeded CI slice)", () => {
  it("3,500 mutants across the decoder, mmproj, mask-decoder, tokenizer and image paths: no crash, only typed errors", async () => {
    const s = await fuzz(["--cases", "700", "--seed", "1", "--batch", "350"]);
    expect(s.bugs).toEqual([]);
    expect(s.crashes).toEqual([]);
    expect(s.hangs).toEqual([]);
    expect(s.executions).toBe(3500);
    for (const t of ["decoder", "mmproj", "mask", "tokenizer", "image"]) expect(s.targets[t]?.executions).toBe(700);
    // the campaign reaches native code, and most of what it loads there works
    expect(s.targets.decoder?.native).toBeGreaterThan(20);
    expect(s.targets.mmproj?.nativeResults.ok).toBeGreaterThan(20);
    expect(s.targets.image?.nativeResults.ok).toBeGreaterThan(50);
  });

  it("100 decoders with regrouped attention heads and moved hyperparameters load and generate, or are refused", async () => {
    const s = await fuzz(["--cases", "100", "--seed", "1", "--targets", "hparams"]);
    expect(s.bugs).toEqual([]);
    expect(s.crashes).toEqual([]);
    expect(s.targets.hparams?.nativeResults.ok).toBeGreaterThan(30);
  });

  it("records the input of a worker killed by a signal and carries on after it", async () => {
    // image seeds of --seed 2 start at 2000000014 (see run.mjs) and every one reaches the native step
    const s = await fuzz(["--cases", "10", "--seed", "2", "--targets", "image"], { PALI_FUZZ_CRASH_AT: "2000000017" });
    expect(s.crashes).toEqual([expect.objectContaining({ target: "image", seed: 2000000017, how: "SIGABRT" })]);
    expect(existsSync(s.crashes[0]?.file ?? "")).toBe(true);
    expect(s.executions).toBe(10);
  });
});
