/**
 * Encode/decode throughput on mixed text: node packages/tokenizer/bench/encode.bench.mjs [MiB] [runs]
 * Builds the package first (corepack pnpm build). Not a test; prints MB/s (UTF-8 bytes of input).
 */
import { readFileSync } from "node:fs";
import { Tokenizer } from "../dist/index.js";

const fixtures = new URL("../../../models/fixtures/tokenizer/", import.meta.url);
const megabytes = Number(process.argv[2] ?? 10);
const runs = Number(process.argv[3] ?? 3);

const tokenizer = Tokenizer.fromSentencePiece(new Uint8Array(readFileSync(new URL("tokenizer.model", fixtures))));
const { cases } = JSON.parse(readFileSync(new URL("cases.json", fixtures), "utf8"));

/** Seeded shuffle of the fixture strings (every script, emoji, byte fallback, loc/seg) up to the size. */
function mixedText(bytes) {
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const parts = [];
  let size = 0;
  while (size < bytes) {
    const text = cases[Math.floor(random() * cases.length)].text;
    parts.push(text, random() < 0.8 ? " " : "\n");
    size += Buffer.byteLength(text) + 1;
  }
  return parts.join("");
}

const text = mixedText(megabytes * 1024 * 1024);
const bytes = Buffer.byteLength(text);
// A fresh tokenizer per run would also time the chunk cache warming up; report both.
for (const label of ["cold cache", "warm cache"]) {
  const times = [];
  let ids = [];
  for (let run = 0; run < runs; run++) {
    const tok =
      label === "cold cache"
        ? Tokenizer.fromSentencePiece(new Uint8Array(readFileSync(new URL("tokenizer.model", fixtures))))
        : tokenizer;
    const start = performance.now();
    ids = tok.encode(text);
    times.push(performance.now() - start);
  }
  const best = Math.min(...times);
  console.log(
    `encode ${label}: ${(bytes / 1e6).toFixed(1)} MB, ${ids.length} tokens, best ${best.toFixed(0)} ms → ${(bytes / 1e6 / (best / 1000)).toFixed(1)} MB/s (runs: ${times.map((t) => t.toFixed(0)).join(", ")} ms)`,
  );
}
const ids = tokenizer.encode(text);
const start = performance.now();
const decoded = tokenizer.decode(ids);
const ms = performance.now() - start;
console.log(
  `decode: ${ids.length} tokens in ${ms.toFixed(0)} ms → ${(bytes / 1e6 / (ms / 1000)).toFixed(1)} MB/s, round trip ${decoded === text.replaceAll("▁", " ") ? "ok" : "differs"}`,
);
