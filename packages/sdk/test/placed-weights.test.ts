/**
 * The image encoder's matrices in the CPU backend's repacked and AMX layouts (q8_0 and q4_0 mmproj files) give
 * the features of the plain layout, on a synthetic tower of realistic width (models/synthetic, `small`: 256
 * wide); PALI_CPU_REPACK=0 is the plain layout, =no-amx the repacked kernels of CPUs without AMX.
 */
import { execFileSync } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { convertCheckpoint } from "@pali/convert";
import { setLogger, systemInfo, VisionModel } from "@pali/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ConvertedFixtures, fixtures, relL2 } from "./helpers.js";

const fx = new ConvertedFixtures();
let checkpoint: string;
beforeAll(async () => {
  await fx.init();
  checkpoint = join(fx.dir, "small");
  execFileSync(process.execPath, [
    join(fixtures, "..", "synthetic", "make-checkpoint.mjs"),
    "--out",
    checkpoint,
    "--model",
    "small",
  ]);
}, 120_000);
afterAll(async () => {
  setLogger(null);
  delete process.env.PALI_CPU_REPACK;
  await fx.cleanup();
});

it("q8_0 and q4_0 towers in the CPU's fast layouts match the plain layout", async () => {
  const features = systemInfo().cpuFeatures;
  const placedIn: string[] = [];
  setLogger((_level, text) => {
    const m = /matrices in (\S+)/.exec(text);
    if (m) placedIn.push(m[1] as string);
  }, "debug");
  const pixels = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.01));
  for (const mmprojType of ["q8_0", "q4_0"] as const) {
    const outDir = join(fx.dir, mmprojType);
    await mkdir(outDir);
    const { mmproj } = await convertCheckpoint({ input: checkpoint, outDir, type: "q8_0", mmprojType });
    const encode = async (mode: string) => {
      process.env.PALI_CPU_REPACK = mode;
      const vm = await VisionModel.load(mmproj);
      try {
        return (await vm.encode(pixels, 1, { threads: 2 })).data;
      } finally {
        vm.dispose();
      }
    };
    const plain = await encode("0");
    expect(placedIn).toEqual([]);
    for (const mode of ["1", "no-amx"]) {
      placedIn.length = 0;
      const placed = await encode(mode);
      expect(relL2(placed, plain), `${mmprojType} ${mode}`).toBeLessThanOrEqual(1e-5);
      // Where the CPU has the kernels, the matrices really were placed (q4_0 repacks on any AVX2 CPU).
      const expected =
        mode === "1" && features.AMX_INT8 ? "AMX" : mmprojType === "q4_0" && features.AVX2 ? "CPU_REPACK" : undefined;
      if (expected) expect(placedIn, `${mmprojType} ${mode}`).toEqual([expected]);
    }
  }
}, 120_000);
