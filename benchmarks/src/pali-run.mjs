// One model, measured in its own process (so peak RSS is this model's): load, image encode, prefill,
// decode, time to first token, end-to-end caption, a batch of 8 images, and encode-once-ask-many
// (--encode-only: load and image encode).
// Prints one JSON document.
import { parseArgs } from "node:util";
import { PaliGemma } from "@pali/sdk";
import sharp from "sharp";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    mmproj: { type: "string" },
    reps: { type: "string", default: "3" },
    tokens: { type: "string", default: "32" },
    threads: { type: "string" },
    extras: { type: "boolean" },
    "encode-only": { type: "boolean" },
  },
});
const reps = Number(values.reps);
const maxTokens = Number(values.tokens);
const threads = values.threads ? Number(values.threads) : undefined;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs.length });

async function photo(seed) {
  // a noisy gradient: the content does not change the cost, only the size does
  const w = 640;
  const h = 480;
  const data = Buffer.alloc(w * h * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = ((i % (w * 3)) / 8 + (s >>> 24) / 4) & 255;
  }
  return sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .jpeg()
    .toBuffer();
}

const t0 = performance.now();
const pg = await PaliGemma.load({
  model: values.model,
  mmproj: values.mmproj,
  ...(threads ? { threads } : {}),
  flashAttention: false,
});
const loadMs = performance.now() - t0;
const image = await photo(1);

// Image encode alone
const encode = [];
for (let i = 0; i < reps; i++) {
  const t = performance.now();
  await pg.encodeImage(image);
  encode.push(performance.now() - t);
}

if (values["encode-only"]) {
  await pg.dispose();
  const out = { loadMs, imageEncodeMs: stats(encode), peakRssBytes: process.resourceUsage().maxRSS * 1024 };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

// Caption of maxTokens tokens (random weights rarely emit <eos>; the count is what matters)
const prefill = [];
const decode = [];
const ttft = [];
const e2e = [];
for (let i = 0; i < reps; i++) {
  const t = performance.now();
  const result = await pg.generate({ image, prompt: "caption en", maxTokens });
  e2e.push(performance.now() - t);
  // the first token is sampled right after the prefix: encode + prefill is the time to it
  ttft.push(result.timings.imageEncodeMs + result.timings.prefillMs);
  prefill.push((result.timings.prefillTokens / result.timings.prefillMs) * 1000);
  // decodeMs spans the sampling of every token and the decode of all but the last
  decode.push(((result.timings.decodedTokens - 1) / result.timings.decodeMs) * 1000);
}
const prefillTokens = pg.tokenizer.encode("caption en\n").length + 1 + pg.info.imageTokens;

// Extras (full runs): a batch of 8 different images, one caption each; five questions about one image,
// with the image each time and encoded once.
let batch8;
let askMany;
if (values.extras) {
  const images = await Promise.all(Array.from({ length: 8 }, (_, i) => photo(i + 2)));
  const tb = performance.now();
  for (const img of images) await pg.generate({ image: img, prompt: "caption en", maxTokens: 8 });
  const batchMs = performance.now() - tb;

  // Five questions about one image: with the image each time, and encoded once
  const questions = ["answer en what is this?", "answer en what color is it?", "answer en how many?", "caption en", "ocr"];
  const ta = performance.now();
  for (const prompt of questions) await pg.generate({ image, prompt, maxTokens: 4 });
  const eachMs = performance.now() - ta;
  const te = performance.now();
  const embeddings = await pg.encodeImage(image);
  for (const prompt of questions) await pg.generate({ image: embeddings, prompt, maxTokens: 4 });
  const onceMs = performance.now() - te;
  batch8 = { ms: batchMs, imagesPerS: 8000 / batchMs };
  askMany = { eachMs, onceMs, speedup: eachMs / onceMs };
}

await pg.dispose();
const out = {
  loadMs,
  imageEncodeMs: stats(encode),
  prefillTokens,
  prefillTokPerS: stats(prefill),
  decodeTokPerS: stats(decode),
  timeToFirstTokenMs: stats(ttft),
  captionMs: stats(e2e),
  captionTokens: maxTokens,
  batch8,
  askMany,
  peakRssBytes: process.resourceUsage().maxRSS * 1024,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
