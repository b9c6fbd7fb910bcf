/** `--mmproj-type auto`: the image encoder's type follows the CPU, as benchmarks/src/weights.mjs measured. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { systemInfo } from "@pali/core";
import { expect, it } from "vitest";
import { autoMmprojType, convertCheckpoint } from "../src/index.js";

const fixture = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "models", "fixtures", "checkpoints", "pg1-224");

it("bf16 with AVX512_BF16 and no AMX, q8_0 on other x86 CPUs with AVX2, f16 elsewhere", () => {
  expect(autoMmprojType({ AVX2: "1", AVX512: "1", AVX512_BF16: "1", AMX_INT8: "1" })).toBe("q8_0");
  expect(autoMmprojType({ AVX2: "1", AVX512: "1", AVX512_BF16: "1" })).toBe("bf16");
  expect(autoMmprojType({ AVX2: "1", AVX512: "1" })).toBe("q8_0");
  expect(autoMmprojType({ AVX2: "1" })).toBe("q8_0");
  expect(autoMmprojType({ AVX: "1", SSE3: "1" })).toBe("f16");
  expect(autoMmprojType({ NEON: "1", ARM_FMA: "1" })).toBe("f16");
});

it("convertCheckpoint with mmprojType auto writes this CPU's type", async () => {
  const out = await mkdtemp(join(tmpdir(), "pali-auto-"));
  try {
    const { mmproj } = await convertCheckpoint({ input: fixture, outDir: out, type: "q8_0", mmprojType: "auto" });
    expect(basename(mmproj)).toBe(`mmproj-pg1-224-${autoMmprojType(systemInfo().cpuFeatures)}.gguf`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
