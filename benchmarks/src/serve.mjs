#!/usr/bin/env node
// The server's throughput at several `parallel` settings: N concurrent /v1/chat/completions requests on
// loopback (different images, greedy, max_tokens fixed), one server per setting, in this run.
//   node benchmarks/src/serve.mjs --model F.gguf [--mmproj F] [--parallel 1,8] [--requests 16] [--max-tokens 32]
//        [--prompt "caption en"] [--threads N]
// Prints one JSON document on its last line: per setting, wall seconds, requests/s, completion tokens/s and
// the median and worst request latency.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PaliGemma } from "@pali/sdk";
import { createServer } from "@pali/server";

const root = join(fileURLToPath(import.meta.url), "..", "..", "..");
const args = process.argv.slice(2).filter((a, i) => !(i === 0 && a === "--"));
const { values } = parseArgs({
  args,
  options: {
    model: { type: "string", default: join(root, "models", "demo", "pali-demo-q8_0.gguf") },
    mmproj: { type: "string" },
    parallel: { type: "string", default: "1,8" },
    requests: { type: "string", default: "16" },
    "max-tokens": { type: "string", default: "32" },
    prompt: { type: "string", default: "caption en" },
    threads: { type: "string" },
  },
});
const log = (m) => process.stderr.write(`serve-bench: ${new Date().toISOString().slice(11, 19)} ${m}\n`);
const n = Number(values.requests);
const maxTokens = Number(values["max-tokens"]);
const examples = join(root, "models", "demo", "examples");
const images = await Promise.all(
  [0, 1, 2, 3, 4, 5].map(
    async (i) => `data:image/png;base64,${(await readFile(join(examples, `00${i}.png`))).toString("base64")}`,
  ),
);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const parallel of values.parallel.split(",").map(Number)) {
  const load = () =>
    PaliGemma.load({
      model: values.model,
      ...(values.mmproj ? { mmproj: values.mmproj } : {}),
      ...(values.threads ? { threads: Number(values.threads) } : {}),
      parallel,
    });
  const server = await createServer({ load, port: 0, logLevel: "error", maxQueue: n });
  const url = await server.listen();
  await server.ready();
  const one = async (i) => {
    const t0 = performance.now();
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        max_tokens: maxTokens,
        temperature: 0,
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: values.prompt },
              { type: "image_url", image_url: { url: images[i % images.length] } },
            ],
          },
        ],
      }),
    });
    const body = await response.json();
    if (response.status !== 200) throw new Error(`request ${i}: ${response.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - t0, tokens: body.usage.completion_tokens };
  };
  await one(0); // warm-up
  const t0 = performance.now();
  const done = await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
  const wallS = (performance.now() - t0) / 1000;
  const tokens = done.reduce((a, d) => a + d.tokens, 0);
  const row = {
    parallel,
    requests: n,
    wallS,
    requestsPerS: n / wallS,
    completionTokPerS: tokens / wallS,
    medianMs: median(done.map((d) => d.ms)),
    worstMs: Math.max(...done.map((d) => d.ms)),
  };
  log(JSON.stringify(row));
  rows.push(row);
  await server.close();
}
console.log(JSON.stringify({ model: values.model, prompt: values.prompt, maxTokens, rows }));
