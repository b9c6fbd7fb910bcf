/**
 * The Vulkan variant on lavapipe (Mesa's Vulkan driver on the CPU; `apt-get install mesa-vulkan-drivers`)
 * against the CPU build, on the committed fixtures: SigLIP features, first-step logits and suffix
 * log-probabilities of the tiny PG1/PG2-224 checkpoints (f32, f32 KV cache, flash attention off), and the
 * demo model's mask decoder. Each side runs in its own process (gpu-run.mjs), since a process loads one
 * variant. Besides the numbers, it asserts that the work ran on the Vulkan device: the scheduler's node
 * placement and the weight buffers of our own graphs, and libllama's offload report for the decoder.
 *
 * Needs the staged variant (`node native/scripts/stage.mjs linux-x64-vulkan`, which .ci/run does) and the
 * built dist; skipped, saying why, otherwise.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConvertedFixtures, fixtures, maxRelative, readF32, referenceCases, references, relL2 } from "./helpers.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..", "..");
const staged = join(repo, "native", "npm", "linux-x64-vulkan", "bin", "pali.node");

function lavapipe(): boolean {
  for (const dir of ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]) {
    if (existsSync(dir) && readdirSync(dir).some((f) => f.startsWith("lvp_icd"))) return true;
  }
  return false;
}

const skipReason =
  process.platform !== "linux" || process.arch !== "x64"
    ? "the Vulkan variant test runs on linux-x64"
    : !lavapipe()
      ? "lavapipe is not installed (apt-get install mesa-vulkan-drivers libvulkan1)"
      : !existsSync(staged)
        ? "the Vulkan variant is not staged (node native/scripts/stage.mjs linux-x64-vulkan)"
        : !existsSync(join(repo, "packages", "sdk", "dist", "index.js"))
          ? "packages/sdk/dist is not built (corepack pnpm build)"
          : null;
if (skipReason) console.warn(`vulkan.test.ts skipped: ${skipReason}`);

interface Side {
  checkpoints: {
    name: string;
    encodeMs: number[];
    cases: { photo: string; prompt: string; features: string; logits?: string; suffixLogprobs: number[]; scoreMs: number }[];
    graphs: {
      graph: string;
      nodes: number;
      nodesByBackend: Record<string, number>;
      weightBytesByBuffer: Record<string, number>;
    }[];
  }[];
  logs: string[];
  timings: { maskMs: number };
  maskDevice: string;
  masks: string[];
  graphs: { graph: string; nodes: number; nodesByBackend: Record<string, number>; weightBytesByBuffer: Record<string, number> }[];
  variant: { variant: string; gpu: string | null };
  devices: { name: string; backend: string }[];
}

const f32 = (b64: string) => {
  const b = Buffer.from(b64, "base64");
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};

// Bounds, from the differences measured on lavapipe (llvmpipe, LLVM 15) against the CPU build, with room.
// Measured (two runs, same): image features 1.70e-3 max-relative to the CPU build (and to transformers),
// first-step logits relL2 4.7e-3, masks 5.4e-3 max |diff| on values of about ±1; ggml's Vulkan matrix
// products round their operands to f16 where the CPU's f32 kernels do not. Bounds: about 3×.
const BOUND = { features: 5e-3, logits: 1.5e-2, logprobs: 5e-2, masks: 1.5e-2 };
describe.skipIf(skipReason !== null)("the Vulkan variant on lavapipe", () => {
  const fx = new ConvertedFixtures();
  let cpu: Side;
  let vulkan: Side;
  let vulkanScores: Side | undefined;
  let scoreCrash = "";

  beforeAll(async () => {
    await fx.init();
    const checkpoints = [];
    for (const name of ["pg1-224", "pg2-224"]) {
      const files = await fx.convert(name);
      const cases = (await referenceCases(name)).map((c) => ({
        photo: c.photo,
        prompt: c.prompt,
        suffix: c.suffix,
        logits: c.prompt === "caption en",
      }));
      checkpoints.push({ name, ...files, cases });
    }
    const job = {
      checkpoints,
      images: join(references, "images"),
      maskDecoder: join(repo, "models", "demo", "mask-decoder-f32.gguf"),
      codes: JSON.parse(readFileSync(join(fixtures, "vqvae", "codes.json"), "utf8")) as number[][],
    };
    const run = (gpu: false | "vulkan", score: boolean, extraEnv: Record<string, string> = {}): Side => {
      const jobPath = join(fx.dir, `job-${gpu}-${score}.json`);
      const outPath = join(fx.dir, `out-${gpu}-${score}.json`);
      writeFileSync(jobPath, JSON.stringify({ ...job, gpu, score }));
      // lavapipe is a CPU-type Vulkan device, which ggml skips unless it is named
      const env = { ...process.env, GGML_VK_VISIBLE_DEVICES: "0", PALI_NATIVE_PATH: "", PALI_GPU: "", ...extraEnv };
      execFileSync(process.execPath, [join(here, "gpu-run.mjs"), jobPath, outPath], { env, stdio: ["ignore", "ignore", "pipe"] });
      return JSON.parse(readFileSync(outPath, "utf8")) as Side;
    };
    cpu = run(false, true);
    vulkan = run("vulkan", false);
    // Multi-token causal batches (scoring a suffix) crash Debian 12's lavapipe (Mesa 22.3) now and then
    // inside its own worker thread (heap corruption in libvulkan_lvp, under valgrind nothing of ours); ggml's
    // op fusion off makes it rarer. A crash there is the driver's: said, and that comparison skipped.
    try {
      vulkanScores = run("vulkan", true, { GGML_VK_DISABLE_FUSION: "1" });
    } catch (e) {
      scoreCrash = String((e as Error).message)
        .split("\n")
        .slice(0, 2)
        .join(" ");
      console.warn(`lavapipe crashed while scoring suffixes (a driver bug, see the comment): ${scoreCrash}`);
    }
  }, 600_000);
  afterAll(() => fx.cleanup());

  it("loads the Vulkan variant and finds lavapipe; the CPU side runs on the CPU", () => {
    expect(vulkan.variant.variant).toBe("@pali/native-linux-x64-vulkan");
    expect(vulkan.variant.gpu).toBe("vulkan");
    expect(vulkan.devices.some((d) => d.backend === "Vulkan")).toBe(true);
    expect(cpu.variant.gpu).toBeNull();
    expect(cpu.devices.some((d) => d.backend === "Vulkan")).toBe(false);
  });

  it("runs the SigLIP graph and the mask decoder on the Vulkan device, weights in its buffers", () => {
    for (const side of [...vulkan.checkpoints.map((c) => c.graphs), vulkan.graphs]) {
      for (const g of side) {
        const onDevice = g.nodesByBackend.Vulkan0 ?? 0;
        // ggml's scheduler keeps the graph's inputs (a node or two) on the CPU
        expect(onDevice / g.nodes, `${g.graph}: ${JSON.stringify(g.nodesByBackend)}`).toBeGreaterThan(0.95);
        expect(Object.keys(g.weightBytesByBuffer), g.graph).toEqual(["Vulkan0"]);
      }
    }
    expect(vulkan.graphs.map((g) => g.graph).sort()).toEqual(["the image encode", "the mask decoder"]);
    expect(vulkan.maskDevice).toBe("Vulkan0");
    for (const g of cpu.graphs) expect(Object.keys(g.nodesByBackend), g.graph).toEqual(["CPU"]);
  });

  it("offloads every decoder layer to the Vulkan device (libllama's report)", () => {
    const offloaded = vulkan.logs.find((l) => /offloaded \d+\/\d+ layers to GPU/.test(l));
    expect(offloaded, vulkan.logs.join("\n")).toBeDefined();
    const [, n, total] = /offloaded (\d+)\/(\d+)/.exec(offloaded as string) as RegExpExecArray;
    expect(n).toBe(total);
    expect(vulkan.logs.some((l) => /Vulkan0 model buffer size/.test(l))).toBe(true);
    expect(vulkan.logs.some((l) => /Vulkan0 KV buffer size/.test(l))).toBe(true);
  });

  it("matches the CPU build and transformers: features and first-step logits", async () => {
    const worst = { features: 0, featuresRef: 0, logits: 0 };
    for (const [i, cp] of vulkan.checkpoints.entries()) {
      const base = cpu.checkpoints[i] as Side["checkpoints"][number];
      for (const [j, c] of cp.cases.entries()) {
        const b = base.cases[j] as (typeof base.cases)[number];
        const features = f32(c.features);
        worst.features = Math.max(worst.features, maxRelative(features, f32(b.features)));
        const reference = await readF32(join(references, cp.name, `features-${c.photo}.f32`));
        worst.featuresRef = Math.max(worst.featuresRef, maxRelative(features, reference));
        if (c.logits && b.logits) worst.logits = Math.max(worst.logits, relL2(f32(c.logits), f32(b.logits)));
      }
    }
    console.log(`Vulkan vs CPU, worst: ${JSON.stringify(worst)}`);
    expect(worst.features).toBeLessThanOrEqual(BOUND.features);
    expect(worst.featuresRef).toBeLessThanOrEqual(BOUND.features); // against transformers' own features
    expect(worst.logits).toBeLessThanOrEqual(BOUND.logits);
  });

  it("matches the CPU build: suffix log-probabilities", (ctx) => {
    if (!vulkanScores) {
      ctx.skip(`lavapipe crashed: ${scoreCrash}`);
      return;
    }
    let worst = 0;
    for (const [i, cp] of vulkanScores.checkpoints.entries()) {
      const base = cpu.checkpoints[i] as Side["checkpoints"][number];
      for (const [j, c] of cp.cases.entries()) {
        const b = base.cases[j] as (typeof base.cases)[number];
        for (const [k, lp] of c.suffixLogprobs.entries()) {
          const d = Math.abs(lp - (b.suffixLogprobs[k] as number));
          expect(d, `${cp.name} ${c.photo} "${c.prompt}" token ${k}`).toBeLessThanOrEqual(BOUND.logprobs);
          worst = Math.max(worst, d);
        }
      }
    }
    console.log(`suffix log-probabilities, Vulkan vs CPU: max |diff| ${worst.toExponential(2)}`);
  });

  it("decodes the same masks as the CPU build", () => {
    let max = 0;
    for (const [i, m] of vulkan.masks.entries()) {
      const a = f32(m);
      const b = f32(cpu.masks[i] as string);
      for (let k = 0; k < b.length; k++) max = Math.max(max, Math.abs((a[k] as number) - (b[k] as number)));
    }
    console.log(`mask decoder, Vulkan vs CPU: max |diff| ${max.toExponential(2)}`);
    expect(max).toBeLessThanOrEqual(BOUND.masks);
  });

  it("records the timings (lavapipe is slow; for the record)", () => {
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    const rows = vulkan.checkpoints.map((cp, i) => {
      const base = cpu.checkpoints[i] as Side["checkpoints"][number];
      return `${cp.name}: encode ${sum(base.encodeMs).toFixed(0)} ms CPU / ${sum(cp.encodeMs).toFixed(0)} ms lavapipe (first ${base.encodeMs[0]?.toFixed(0)} / ${cp.encodeMs[0]?.toFixed(0)}), score ${sum(base.cases.map((c) => c.scoreMs)).toFixed(0)} ms CPU`;
    });
    rows.push(
      `mask decoder (8 masks): ${cpu.timings.maskMs.toFixed(0)} ms CPU / ${vulkan.timings.maskMs.toFixed(0)} ms lavapipe`,
    );
    console.log(rows.join("\n"));
    expect(rows.length).toBe(3);
  });
});
