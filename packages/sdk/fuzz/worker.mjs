/**
 * A long-lived fuzz worker. Reads batches ({ target, from, to, nativeEvery, deepEvery } per stdin line),
 * runs every case, and writes one JSON line per batch. Before each native step it writes "n <seed>"
 * synchronously, so that when a signal kills it the driver knows which input did.
 */
import { writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { nativeStep, tsStep } from "./targets.mjs";

process.env.PALI_LOG ??= "none";
// The harness's own check (test/fuzz.test.ts): die by a signal at this seed, as a crashing load would.
const crashAt = Number(process.env.PALI_FUZZ_CRASH_AT ?? Number.NaN);
const scratch = join(process.env.PALI_FUZZ_TMP ?? tmpdir(), `pali-fuzz-${process.pid}.gguf`);

function bump(map, key) {
  map[key] = (map[key] ?? 0) + 1;
}

async function runBatch({ target, from, to, nativeEvery, deepEvery }) {
  const s = { target, from, to, executions: 0, refused: {}, accepted: 0, native: 0, nativeResults: {}, bugs: [] };
  for (let seed = from; seed < to; seed++) {
    s.executions++;
    let step;
    try {
      step = await tsStep(target, seed, nativeEvery);
    } catch (error) {
      s.bugs.push({ seed, stage: "ts", message: String(error.message).slice(0, 2000) });
      continue;
    }
    if (step.code !== undefined) {
      bump(s.refused, `${step.stage}:${step.code}`);
      continue;
    }
    s.accepted++;
    if (!step.native) continue;
    if (target !== "image") writeFileSync(scratch, step.bytes);
    writeSync(1, `n ${seed}\n`);
    s.native++;
    if (seed === crashAt) process.kill(process.pid, "SIGABRT");
    try {
      bump(s.nativeResults, await nativeStep(target, scratch, step.bytes, seed, deepEvery));
    } catch (error) {
      s.bugs.push({ seed, stage: "native", message: String(error.message).slice(0, 2000) });
    }
  }
  writeSync(1, `${JSON.stringify(s)}\n`);
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === "") continue;
  await runBatch(JSON.parse(line));
}
