// The benchmarks/README.md table, regenerated from one results file.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const f = (x, d = 1) => (x === undefined || Number.isNaN(x) ? "—" : x.toFixed(d));
const pct = (x) => (x === undefined ? "—" : `${(x * 100).toFixed(0)}%`);
const range = (s, d = 1) => `${f(s.median, d)} (${f(s.min, d)}–${f(s.max, d)})`;

export function writeReport(results, path) {
  const m = results.machine;
  const lines = [
    `Run ${results.date.slice(0, 16).replace("T", " ")} UTC on ${m.host}: ${m.cpu}, ${m.cores} threads, ${f(m.memoryGiB, 0)} GiB; ` +
      `${results.system.llamaCpp}, ggml ${results.system.buildMode}${results.quick ? ", quick mode" : ""}.`,
    "",
    `Machine, same run: triad bandwidth ${f(m.bandwidthGBs)} GB/s; ggml matmul ${f(m.matmulGflops.f32, 0)} / ${f(m.matmulGflops.f16, 0)} / ${f(m.matmulGflops.bf16, 0)} GFLOP/s (f32 / f16 / bf16 weights).`,
    "",
    "Synthetic PaliGemma 1 3B-224 (random weights), image 640×480 → 224, prompt `caption en`, greedy, medians (min–max):",
    "",
    "| | q | load ms | encode ms | prefill tok/s | decode tok/s | TTFT ms | caption ms (32 tok) | peak RSS / files |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const [type, r] of Object.entries(results.models)) {
    const p = r.pali;
    lines.push(
      `| pali | ${type} | ${f(p.loadMs, 0)} | ${range(p.imageEncodeMs, 0)} | ${range(p.prefillTokPerS)} | ${range(p.decodeTokPerS)} | ${range(p.timeToFirstTokenMs, 0)} | ${range(p.captionMs, 0)} | ${f(p.peakRssBytes / 2 ** 30, 2)} GiB / ${f((r.files.modelBytes + r.files.mmprojBytes) / 2 ** 30, 2)} GiB |`,
      `| llama-bench | ${type} | | | ${f(r.llamaBench.ppTokPerS)} ± ${f(r.llamaBench.ppStd)} | ${f(r.llamaBench.tgTokPerS)} ± ${f(r.llamaBench.tgStd)} | | | |`,
    );
  }
  for (const dtype of ["bfloat16", "float32"]) {
    const t = results[`transformers_${dtype}`];
    if (t) {
      lines.push(
        `| transformers | ${dtype} | ${f(t.loadS * 1000, 0)} | ${f(t.imageEncodeMs, 0)} | ${f(t.prefillTokPerS)} | ${f(t.decodeTokPerS)} | | ${f(t.captionMs, 0)} | ${f(t.peakRssBytes / 2 ** 30, 2)} GiB |`,
      );
    }
  }
  lines.push(
    "",
    "Ratios (same run):",
    "",
    "| q | prefill / llama-bench | decode / llama-bench | decode / bandwidth bound | prefill / FLOP bound | encode / FLOP bound | peak RSS / files | encode-once-ask-many speed-up | 8-image batch img/s |",
    "|---|---|---|---|---|---|---|---|---|",
  );
  for (const [type, r] of Object.entries(results.models)) {
    const x = r.ratios;
    lines.push(
      `| ${type} | ${pct(x.prefillVsLlamaBench)} | ${pct(x.decodeVsLlamaBench)} | ${pct(x.decodeVsBandwidthBound)} | ${pct(x.prefillVsFlopBound)} | ${pct(x.encodeVsFlopBound)} | ${f(x.peakRssVsFiles, 2)} | ${f(r.pali.askMany?.speedup, 2)}× | ${f(r.pali.batch8?.imagesPerS, 3)} |`,
    );
  }
  const q4 = results.models.q4_k_m;
  const t32 = results.transformers_float32;
  const t16 = results.transformers_bfloat16;
  if (q4 && (t32 || t16)) {
    lines.push(
      "",
      `End-to-end caption, pali q4_k_m vs transformers: ${t32 ? `${f(t32.captionMs / q4.pali.captionMs.median, 2)}× faster than fp32` : ""}${t32 && t16 ? ", " : ""}${t16 ? `${f(t16.captionMs / q4.pali.captionMs.median, 2)}× faster than bf16` : ""}.`,
    );
  }
  const table = lines.join("\n");
  const readme = readFileSync(path, "utf8");
  const start = "<!-- results:start -->";
  const end = "<!-- results:end -->";
  const next = readme.includes(start)
    ? readme.replace(new RegExp(`${start}[\\s\\S]*${end}`), `${start}\n${table}\n${end}`)
    : `${readme}\n${start}\n${table}\n${end}\n`;
  writeFileSync(path, next);
}

// node report.mjs RESULTS.json README.md
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href)
  writeReport(JSON.parse(readFileSync(process.argv[2], "utf8")), process.argv[3]);
