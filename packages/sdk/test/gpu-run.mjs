// One side of the GPU parity test (vulkan.test.ts), in its own process: a process loads one native variant.
//   node gpu-run.mjs JOB.json OUT.json
// JOB: { gpu, score, checkpoints: [{ name, model, mmproj, cases: [{ photo, prompt, suffix, logits }] }], images,
//        maskDecoder, codes }. OUT: features / logits / log-probabilities / masks (base64 f32), timings, the
// variant, the graph stats and libllama's offload lines.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { graphStats, loadNative, MaskDecoder, setLogger, systemInfo } from "@pali/core";
import { PaliGemma } from "@pali/sdk";

const [jobPath, outPath] = process.argv.slice(2);
const job = JSON.parse(readFileSync(jobPath, "utf8"));
const f32 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
const out = { checkpoints: [], logs: [], timings: {} };
const ms = (t) => Number(process.hrtime.bigint() - t) / 1e6;

// The variant first (a process loads one), then libllama's log of the first load: where the layers went.
loadNative({ gpu: job.gpu });
setLogger((_level, text) => out.logs.push(text.trim()), "info");
for (const cp of job.checkpoints) {
  const pg = await PaliGemma.load({
    model: cp.model,
    mmproj: cp.mmproj,
    gpu: job.gpu,
    kvCacheType: "f32",
    flashAttention: false,
    threads: 2,
  });
  setLogger(null);
  const r = { name: cp.name, cases: [], encodeMs: [] };
  for (const c of cp.cases) {
    const image = join(job.images, `${c.photo}.png`);
    let t = process.hrtime.bigint();
    const features = await pg.encodeImage(image);
    r.encodeMs.push(ms(t));
    const rc = { photo: c.photo, prompt: c.prompt, features: f32(features.data) };
    if (c.logits) rc.logits = f32(await pg.nextTokenLogits({ image: features, prompt: c.prompt }));
    if (job.score) {
      t = process.hrtime.bigint();
      const score = await pg.score({ image: features, prompt: c.prompt, suffix: c.suffix });
      rc.scoreMs = ms(t);
      rc.suffixLogprobs = Array.from(score.logprobs);
    }
    r.cases.push(rc);
  }
  r.graphs = graphStats();
  await pg.dispose();
  out.checkpoints.push(r);
}

const decoder = await MaskDecoder.load(job.maskDecoder, { gpu: job.gpu !== false });
const t = process.hrtime.bigint();
const masks = await decoder.decode(job.codes, { threads: 2 });
out.timings.maskMs = ms(t);
out.maskDevice = decoder.info().device;
out.masks = masks.map(f32);
decoder.dispose();
out.graphs = graphStats();
const info = systemInfo();
out.variant = info.variant;
out.devices = info.devices;
writeFileSync(outPath, JSON.stringify(out));
