// The image encoder's two attention paths, measured: the scores materialized in row blocks against ggml's f32
// flash attention (PALI_VISION_FLASH=0 / 1), at each resolution whose synthetic mmproj is in benchmarks/.cache
// (`pnpm bench -- --setups pg1-3b-224,pg1-3b-448,pg1-3b-896 --prepare`). Each path runs in its own process, so
// its peak RSS is that encoder's alone: load, one warm-up encode, then `--reps` timed encodes of one image.
// Prints a line per resolution and path, and writes benchmarks/results/<day>-attention.json.
//
//   node benchmarks/src/attention.mjs [--reps 2] [--threads N] [--type f16]
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { systemInfo } from "@pali/core";
import { relL2 } from "./compare.mjs";
import { encodeChild } from "./encode-child.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const cache = join(root, "benchmarks", ".cache");
const { values } = parseArgs({
  options: {
    reps: { type: "string", default: "2" },
    threads: { type: "string" },
    type: { type: "string", default: "f16" },
    child: { type: "string" },
  },
});
const threads = Number(values.threads ?? systemInfo().defaultThreads);
const reps = Number(values.reps);

if (values.child) {
  await encodeChild(JSON.parse(values.child), reps, threads);
  process.exit(0);
}

const rows = [];
for (const size of [224, 448, 896]) {
  const mmproj = join(cache, `mmproj-pg1-3b-${size}-${values.type}.gguf`);
  if (!existsSync(mmproj)) {
    console.error(`skipping ${size}: ${mmproj} is missing`);
    continue;
  }
  const features = {};
  for (const flash of ["0", "1"]) {
    const out = join(tmpdir(), `pali-attention-${process.pid}-${size}-${flash}.f32`);
    const child = JSON.stringify({ mmproj, size, out });
    const stdout = execFileSync(
      process.execPath,
      [fileURLToPath(import.meta.url), "--child", child, "--reps", String(reps), "--threads", String(threads)],
      {
        env: { ...process.env, PALI_VISION_FLASH: flash },
        encoding: "utf8",
        maxBuffer: 1 << 20,
      },
    );
    const r = JSON.parse(stdout);
    const bytes = readFileSync(out);
    unlinkSync(out);
    features[flash] = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const row = {
      size,
      path: flash === "1" ? "flash" : "blocked",
      minMs: Math.round(Math.min(...r.ms)),
      ms: r.ms.map(Math.round),
      peakRssBytes: r.peakRssBytes,
      mmprojBytes: statSync(mmproj).size,
    };
    rows.push(row);
    console.log(
      `${size} ${row.path.padEnd(7)} min ${String(row.minMs).padStart(7)} ms  peak RSS ${(row.peakRssBytes / 2 ** 30).toFixed(2)} GiB = ${(row.peakRssBytes / row.mmprojBytes).toFixed(2)}× the mmproj`,
    );
  }
  const d = relL2(features["1"], features["0"]);
  for (const row of rows.filter((x) => x.size === size)) row.relL2FlashVsBlocked = d;
  console.log(`${size} flash vs blocked features: relL2 ${d.toExponential(1)}`);
}
const file = join(root, "benchmarks", "results", `${new Date().toISOString().slice(0, 10)}-attention.json`);
writeFileSync(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), system: systemInfo(), threads, type: values.type, rows }, null, 1)}\n`,
);
console.log(`wrote ${file}`);
