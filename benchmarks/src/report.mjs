// The benchmarks/README.md table, regenerated from one results file.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const f = (x, d = 1) => (x === undefined || Number.isNaN(x) ? "—" : x.toFixed(d));
const pct = (x) => (x === undefined ? "—" : `${(x * 100).toFixed(0)}%`);
const range = (s, d = 1) => `${f(s.median, d)} (${f(s.min, d)}–${f(s.max, d)})`;

const title = (name, s) =>
  `Synthetic PaliGemma ${s.version} 3B-${s.resolution} (random weights), image 640×480 → ${s.resolution}, prompt \`caption en\`, greedy, medians (min–max):`;

/** Decode bounds from the highest read bandwidth of the run (samples taken at quieter moments are closer to
 * what the memory can do; a decode faster than a low sample is possible, and was seen). */
export function boundDecodes(results) {
  const peak = Math.max(...results.machine.bandwidthSamples);
  results.machine.bandwidthGBs = peak;
  for (const setup of Object.values(results.setups)) {
    for (const entry of Object.values(setup.runs)) {
      if (!entry.pali.decodeTokPerS) continue; // encode-only runs
      // decode reads every weight once per token (the tied embedding is the output head)
      entry.bounds.decodeTokPerS = (peak * 1e9) / entry.files.textTensorBytes;
      entry.ratios.decodeVsBandwidthBound = entry.pali.decodeTokPerS.median / entry.bounds.decodeTokPerS;
    }
  }
}

export function writeReport(results, path) {
  const m = results.machine;
  const g = m.matmulGflops;
  const lines = [
    `Run ${results.date.slice(0, 16).replace("T", " ")} UTC on ${m.host}: ${m.cpu}, ${m.cores} threads, ${f(m.memoryGiB, 0)} GiB; ` +
      `${results.system.llamaCpp}, ggml ${results.system.buildMode}${results.quick ? ", quick mode" : ""}.`,
    "",
    `Machine, same run: read bandwidth ${f(Math.min(...(m.bandwidthSamples ?? [m.bandwidthGBs])))}–${f(Math.max(...(m.bandwidthSamples ?? [m.bandwidthGBs])))} GB/s over ${(m.bandwidthSamples ?? [0]).length} measurements (decode bounds use the highest); ggml 2048² matmul ${["f32", "f16", "bf16", "q8_0", "q4_K"].map((t) => `${f(g[t], 0)}`).join(" / ")} GFLOP/s (f32 / f16 / bf16 / q8_0 / q4_K weights).`,
  ];
  for (const [name, s] of Object.entries(results.setups)) {
    lines.push(
      "",
      `### ${name}`,
      "",
      title(name, s),
      "llama-bench: `-p N -n 0` for the prefix and `-p 0 -n 32 -d N` (32 tokens after N tokens of context, as pali decodes), flash attention off in both.",
      "",
      "| | q | load ms | encode ms | prefill tok/s | decode tok/s | TTFT ms | caption ms (32 tok) | peak RSS / files |",
      "|---|---|---|---|---|---|---|---|---|",
    );
    for (const [type, r] of Object.entries(s.runs)) {
      const p = r.pali;
      const files = r.files.modelBytes + r.files.mmprojBytes;
      lines.push(
        `| pali | ${type} | ${f(p.loadMs, 0)} | ${range(p.imageEncodeMs, 0)} | ${p.prefillTokPerS ? range(p.prefillTokPerS) : "—"} | ${p.decodeTokPerS ? range(p.decodeTokPerS) : "—"} | ${p.timeToFirstTokenMs ? range(p.timeToFirstTokenMs, 0) : "—"} | ${p.captionMs ? range(p.captionMs, 0) : "—"} | ${f(p.peakRssBytes / 2 ** 30, 2)} GiB / ${f(files / 2 ** 30, 2)} GiB |`,
      );
      if (r.llamaBench) {
        lines.push(
          `| llama-bench | ${type} | | | ${f(r.llamaBench.ppTokPerS)} ± ${f(r.llamaBench.ppStd)} | ${f(r.llamaBench.tgTokPerS)} ± ${f(r.llamaBench.tgStd)} | | | |`,
        );
      }
    }
    for (const dtype of ["bfloat16", "float32"]) {
      const t = s[`transformers_${dtype}`];
      if (t) {
        lines.push(
          `| transformers | ${dtype} | ${f(t.loadS * 1000, 0)} | ${f(t.imageEncodeMs, 0)} | ${f(t.prefillTokPerS)} | ${f(t.decodeTokPerS)} | | ${f(t.captionMs, 0)} | ${f(t.peakRssBytes / 2 ** 30, 2)} GiB |`,
        );
      }
    }
    lines.push(
      "",
      "| q | prefill / llama-bench | decode / llama-bench | decode / bandwidth bound | prefill / FLOP bound | encode / FLOP bound | peak RSS / files | encode-once-ask-many speed-up | 8-image batch img/s |",
      "|---|---|---|---|---|---|---|---|---|",
    );
    for (const [type, r] of Object.entries(s.runs)) {
      const x = r.ratios;
      lines.push(
        `| ${type} | ${pct(x.prefillVsLlamaBench)} | ${pct(x.decodeVsLlamaBench)} | ${pct(x.decodeVsBandwidthBound)} | ${pct(x.prefillVsFlopBound)} | ${pct(x.encodeVsFlopBound)} | ${f(x.peakRssVsFiles, 2)} | ${r.pali.askMany ? `${f(r.pali.askMany.speedup, 2)}×` : "—"} | ${f(r.pali.batch8?.imagesPerS, 3)} |`,
      );
    }
    const batched = s.runs.q4_k_m?.batched;
    if (batched) {
      lines.push(
        "",
        `Continuous batching, q4_k_m: aggregate decode tok/s of B sequences, each after its own ${batched.pp}-position prefix, ${batched.ntg} steps (pali's engine with sampling, llama-batched-bench \`-npp ${batched.pp} -ntg ${batched.ntg} -kvu -fa off\`; best of the repetitions).`,
        "",
        "| B | pali tok/s | llama-batched-bench tok/s | pali / llama | pali / pali at B=1 |",
        "|---|---|---|---|---|",
        ...batched.rows.map(
          (r) =>
            `| ${r.parallel} | ${f(r.paliTokPerS)} | ${f(r.llamaBatchedBenchTokPerS)} | ${pct(r.vsLlama)} | ${f(r.vsSingle, 2)}× |`,
        ),
      );
    }
    const q4 = s.runs.q4_k_m;
    const t32 = s.transformers_float32;
    const t16 = s.transformers_bfloat16;
    if (q4?.pali.captionMs && (t32 || t16)) {
      const vs = [];
      if (t32) vs.push(`${f(t32.captionMs / q4.pali.captionMs.median, 2)}× faster than fp32`);
      if (t16) vs.push(`${f(t16.captionMs / q4.pali.captionMs.median, 2)}× faster than bf16`);
      lines.push("", `End-to-end caption of 32 tokens, pali q4_k_m vs transformers: ${vs.join(", ")}.`);
    }
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
