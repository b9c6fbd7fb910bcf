/** An abort or a dispose the user asked for is not an error: ggml's and libllama's failure lines stay off stderr. */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const sdk = join(dirname(fileURLToPath(import.meta.url)), "..");
const demo = join(sdk, "..", "..", "models", "demo");

const script = `
import { PaliGemma } from "@pali/sdk";
const [model, image, parallel] = process.argv.slice(1);
const pg = await PaliGemma.load({ model, parallel: Number(parallel) });
const c = new AbortController();
let n = 0;
try { for await (const _ of pg.stream({ image, prompt: "caption en", maxTokens: 200, signal: c.signal })) if (++n === 2) c.abort(); }
catch (e) { console.log(e.code); }
// a generation that runs long (a seed that samples no <eos> in 64 tokens here), disposed once it is under way:
// the native loop runs ahead of the chunks, so a step is in flight (the greedy caption ends within milliseconds)
const long = { temperature: 5, seed: 1 };
while ((await pg.generate({ image, prompt: "caption en", maxTokens: 64, sampling: long })).tokens.length < 64) long.seed++;
try { for await (const _ of pg.stream({ image, prompt: "caption en", maxTokens: 1000, sampling: long })) pg.dispose(); console.log("done"); }
catch (e) { console.log(e.code); }
`;

const args = (parallel: number) => [
  "--input-type=module",
  "-e",
  script,
  join(demo, "pali-demo-q8_0.gguf"),
  join(demo, "examples", "002.png"),
  String(parallel),
];

it("abort and dispose during generation print nothing on stderr (PALI_LOG=debug shows the lines)", () => {
  const quiet = spawnSync(process.execPath, args(1), { cwd: sdk, encoding: "utf8", env: { ...process.env, PALI_LOG: "" } });
  expect(quiet.status, quiet.stderr).toBe(0);
  expect(quiet.stdout.trim().split("\n")[0]).toBe("ERR_ABORTED");
  expect(quiet.stderr).toBe("");
  const loud = spawnSync(process.execPath, args(1), { cwd: sdk, encoding: "utf8", env: { ...process.env, PALI_LOG: "debug" } });
  expect(loud.stderr).toContain("failed to decode");
});

it("with continuous batching too (an abort leaves between steps; dispose stops the step in flight)", () => {
  const quiet = spawnSync(process.execPath, args(4), { cwd: sdk, encoding: "utf8", env: { ...process.env, PALI_LOG: "" } });
  expect(quiet.status, quiet.stderr).toBe(0);
  expect(quiet.stdout.trim().split("\n")).toEqual(["ERR_ABORTED", expect.stringMatching(/^(ERR_DISPOSED|done)$/)]);
  expect(quiet.stderr).toBe("");
});
