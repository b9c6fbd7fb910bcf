/**
 * Where pali's own product runs (native/src/model/cpu_gemm.cpp): the image encoder's linear layers, whose
 * features equal those of ggml's product (PALI_VISION_GEMM=ggml) and transformers'; and the decoder's prefill
 * backend (gemm_backend.cpp), an accelerator device whose log-probabilities on f32 and bf16 decoders equal those
 * of ggml's product (PALI_TEXT_GEMM=ggml) and transformers'. Each setting runs in its own process (it is chosen
 * at start).
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadNative, systemInfo } from "@pali/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ConvertedFixtures, maxRelative, readF32, referenceCases, references } from "./helpers.js";

const sdk = join(dirname(fileURLToPath(import.meta.url)), "..");
const fx = new ConvertedFixtures();
beforeAll(() => fx.init());
afterAll(() => fx.cleanup());

const supported = loadNative().gemmKernel("f32", 64) !== "";

// what a child prints on its last line, as JSON
function child(script: string, args: string[], env: Record<string, string>): unknown {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script, ...args], {
    cwd: sdk,
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").at(-1) as string);
}

// the suffix log-probabilities of each reference case: the prefix (256 image tokens and the prompt) is prefilled
// in one batch, which the backend takes
const scoreScript = `
import { PaliGemma } from "@pali/sdk";
const [model, mmproj, cases] = process.argv.slice(1);
const pg = await PaliGemma.load({ model, mmproj, kvCacheType: "f32", flashAttention: false, threads: 2 });
const out = [];
for (const c of JSON.parse(cases)) out.push((await pg.score({ image: c.image, prompt: c.prompt, suffix: c.suffix })).logprobs);
console.log(JSON.stringify(out));
pg.dispose();
`;

function logprobs(files: { model: string; mmproj: string }, cases: object[], env: Record<string, string>): number[][] {
  return child(scoreScript, [files.model, files.mmproj, JSON.stringify(cases)], env) as number[][];
}

// one image's features
const encodeScript = `
import { PaliGemma } from "@pali/sdk";
const [model, mmproj, image] = process.argv.slice(1);
const pg = await PaliGemma.load({ model, mmproj, threads: 2 });
console.log(JSON.stringify(Array.from((await pg.encodeImage(image)).data)));
pg.dispose();
`;

it.skipIf(!supported)("encodes with the features of ggml's product and transformers' (f32 tower, 256 patches)", async () => {
  const files = await fx.convert("pg1-224", "f32", "f32");
  for (const c of (await referenceCases("pg1-224")).slice(0, 2)) {
    const image = join(references, "images", `${c.photo}.png`);
    const want = await readF32(join(references, "pg1-224", `features-${c.photo}.f32`));
    const ours = Float32Array.from(child(encodeScript, [files.model, files.mmproj, image], {}) as number[]);
    const theirs = Float32Array.from(
      child(encodeScript, [files.model, files.mmproj, image], { PALI_VISION_GEMM: "ggml" }) as number[],
    );
    expect(maxRelative(ours, want)).toBeLessThanOrEqual(1e-4);
    expect(maxRelative(theirs, want)).toBeLessThanOrEqual(1e-4);
    // and pali's product did run: its sums (and its GELU) differ from ggml's in the last bits
    expect(ours).not.toEqual(theirs);
  }
});

it("is an accelerator device where pali's product runs, and not with PALI_TEXT_GEMM=ggml or a GPU", () => {
  const devices = systemInfo().devices;
  const gpu = devices.some((d) => d.type === "gpu" || d.type === "igpu");
  const names = devices.map((d) => `${d.name}:${d.type}`);
  expect(names.includes("PALI-GEMM:accel")).toBe(supported && !gpu && process.env.PALI_TEXT_GEMM !== "ggml");
});

for (const type of ["f32", "bf16"] as const) {
  it.skipIf(!supported)(`prefills a ${type} decoder with the log-probabilities of ggml's product and transformers'`, async () => {
    const files = await fx.convert("pg1-224", type, "f32");
    const cases = (await referenceCases("pg1-224")).map((c) => ({
      image: join(references, "images", `${c.photo}.png`),
      prompt: c.prompt,
      suffix: c.suffix,
      want: c.suffixLogprobs,
    }));
    const ours = logprobs(files, cases, {});
    const theirs = logprobs(files, cases, { PALI_TEXT_GEMM: "ggml" });
    // f32: the same f32 products in another order; bf16: both round the activations to bf16. Measured on the
    // tiny fixture (whose random weights amplify rounding): at most 3.7e-4 (f32) and 1.4e-2 (bf16) apart, and
    // both equally far from transformers' f32 (3.2e-3, 5.9e-2).
    const same = type === "f32" ? 1e-3 : 3e-2;
    let ourDistance = 0;
    let theirDistance = 0;
    for (const [i, c] of cases.entries()) {
      for (const [j, lp] of c.want.entries()) {
        const a = ours[i]?.[j] ?? Number.NaN;
        const b = theirs[i]?.[j] ?? Number.NaN;
        expect(Math.abs(a - b), `${type} case ${i} token ${j}`).toBeLessThanOrEqual(same);
        ourDistance = Math.max(ourDistance, Math.abs(a - lp));
        theirDistance = Math.max(theirDistance, Math.abs(b - lp));
      }
    }
    expect(ourDistance).toBeLessThanOrEqual(theirDistance * 1.25 + same);
    // and the backend did run: its sums come in another order, so some value differs in its last bits
    const taken = type === "f32" || loadNative().gemmKernel("bf16", 2048) === "avx512-bf16";
    if (taken) expect(ours).not.toEqual(theirs);
  });
}
