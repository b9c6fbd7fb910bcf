/**
 * The `pali pull`, `pali ls` and `pali rm` command modules (packages/cli/src/commands) against the mock Hub:
 * --json prints one document and no progress; without it, progress with bytes, rate and ETA goes to stderr.
 */
import { mkdtemp, rm as remove } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { autoMmprojType } from "@pali/convert";
import { systemInfo } from "@pali/core";
import type { RegistryEntry } from "@pali/hub";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GOOD_TOKEN, MockHub } from "../../hub/test/mock-hub.js";
import { ls } from "../src/commands/ls.js";
import { pull } from "../src/commands/pull.js";
import { rm } from "../src/commands/rm.js";
import type { Io } from "../src/output.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "models", "fixtures", "checkpoints");
const registry: RegistryEntry[] = [
  {
    name: "pg1-tiny",
    repo: "test/pg1-224",
    version: 1,
    params: "3B",
    resolution: 224,
    kind: "mix",
    goodFor: "tests",
    gated: false,
    tasks: [{ task: "caption", prompt: "caption {lang}" }],
  },
];

let work: string;
let hub: MockHub;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "pali-hub-cli-"));
  hub = await new MockHub({ "test/pg1-224": { dir: join(fixtures, "pg1-224") } }).start();
});
afterAll(async () => {
  await hub?.close();
  await remove(work, { recursive: true, force: true });
});

function capture(): Io & { out: string; err: string } {
  const io = {
    out: "",
    err: "",
    stdout: (t: string) => {
      io.out += t;
    },
    stderr: (t: string) => {
      io.err += t;
    },
  };
  return io;
}

const pullArgs = { type: "q8_0", mmprojType: undefined, revision: undefined, threads: undefined, keepSource: false };

describe("pali pull / ls / rm", () => {
  it("pull --json prints {model, mmproj, cached} only; a second pull says cached", async () => {
    const cacheDir = join(work, "json");
    const hubOptions = { endpoint: hub.endpoint, token: GOOD_TOKEN, cacheDir, registry };
    const io = capture();
    expect(await pull({ ...pullArgs, name: "pg1-tiny", json: true }, io, hubOptions)).toBe(0);
    const first = JSON.parse(io.out);
    expect(first).toEqual({
      model: join(cacheDir, "models", "pg1-tiny", "q8_0", "pg1-tiny-q8_0.gguf"),
      // the default --mmproj-type auto: this CPU's measured choice
      mmproj: join(cacheDir, "models", "pg1-tiny", "q8_0", `mmproj-pg1-tiny-${autoMmprojType(systemInfo().cpuFeatures)}.gguf`),
      cached: false,
    });
    expect(io.err).toBe("");
    const again = capture();
    await pull({ ...pullArgs, name: "test/pg1-224", json: true }, again, hubOptions);
    expect(JSON.parse(again.out)).toEqual({ ...first, cached: true });

    const listed = capture();
    expect(await ls({ available: false, json: true }, listed, { cacheDir, registry })).toBe(0);
    expect(JSON.parse(listed.out)).toMatchObject([{ name: "pg1-tiny", type: "q8_0", repo: "test/pg1-224", model: first.model }]);
    const available = capture();
    await ls({ available: true, json: true }, available, { cacheDir, registry });
    expect(JSON.parse(available.out)).toEqual([{ ...registry[0], cached: ["q8_0"] }]);

    const removed = capture();
    expect(await rm({ name: "pg1-tiny", type: undefined, json: true }, removed, { cacheDir, registry })).toBe(0);
    expect(JSON.parse(removed.out)).toEqual({ removed: [{ name: "pg1-tiny", type: "q8_0", size: expect.any(Number) }] });
  });

  it("without --json: progress with bytes and rate on stderr, a table for ls, a line for rm", async () => {
    const cacheDir = join(work, "text");
    const io = capture();
    await pull({ ...pullArgs, name: "pg1-tiny", json: false }, io, { endpoint: hub.endpoint, token: false, cacheDir, registry });
    expect(io.out).toMatch(/^pulled pg1-tiny \(q8_0\) from test\/pg1-224@[0-9a-f]{12}\nmodel: {2}.*pg1-tiny-q8_0.gguf\nmmproj: /);
    expect(io.err).toMatch(/100% .*MiB\/.*MiB .*B\/s/);
    expect(io.err).toMatch(/converting (model|mmproj)/);

    const table = capture();
    await ls({ available: false, json: false }, table, { cacheDir, registry });
    expect(table.out).toMatch(
      /^NAME +TYPE +SIZE +REPO +REVISION +PULLED\npg1-tiny +q8_0 +[\d.]+ [KM]iB +test\/pg1-224 +[0-9a-f]{12} +\d{4}-\d\d-\d\d\n/,
    );
    expect(table.out).toContain(`1 model(s)`);

    const line = capture();
    await rm({ name: "pg1-tiny", type: "q8_0", json: false }, line, { cacheDir, registry });
    expect(line.out).toMatch(/^removed pg1-tiny \(q8_0, [\d.]+ [KM]iB\)\n$/);
    const empty = capture();
    await ls({ available: false, json: false }, empty, { cacheDir, registry });
    expect(empty.out).toMatch(/^No models in the cache/);
  });

  it("bad arguments are typed errors", async () => {
    await expect(pull({ ...pullArgs, name: undefined, json: true }, capture())).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
    });
    await expect(pull({ ...pullArgs, name: "pg1-tiny", type: "q9", json: true }, capture(), { registry })).rejects.toMatchObject({
      message: expect.stringMatching(/for --type/),
    });
    await expect(rm({ name: undefined, type: undefined, json: false }, capture())).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
    });
  });
});
