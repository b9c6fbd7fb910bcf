/** `pali ls --available`: the shipped registry with the tasks each checkpoint was trained for. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultRegistry } from "@pali/hub";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ls, taskSummary } from "../src/commands/ls.js";

let cacheDir: string;
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), "pali-ls-available-"));
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

function capture() {
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

describe("pali ls --available", () => {
  it("shows a TASKS column: the task names, and the training prompt of single-task fine-tunes", async () => {
    const io = capture();
    expect(await ls({ available: true, json: false }, io, { cacheDir })).toBe(0);
    const lines = io.out.split("\n");
    expect(lines[0]).toMatch(/^NAME +REPO +CACHED +TASKS +GOOD FOR$/);
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? "";
    expect(row("pg2-3b-mix-224")).toContain("caption,vqa,ocr,detect,segment");
    expect(row("pg1-3b-ft-docvqa-896")).toContain('vqa: "{question}"');
    expect(row("pg1-3b-ft-refcoco-seg-448")).toContain('segment,detect: "{expression}"');
    expect(row("pg1-3b-ft-nlvr2-224")).toContain('vqa: "answer en {statement}" (2 images)');
    expect(row("pg2-10b-ft-docci-448")).toContain('caption: "caption en"');
    // line breaks inside a prompt stay on one table row
    expect(row("pg1-3b-ft-science-qa-224")).toContain("\\nOptions: {choices}\\nAnswer:");
  });

  it("gives the tasks whole in --json", async () => {
    const io = capture();
    await ls({ available: true, json: true }, io, { cacheDir });
    const rows = JSON.parse(io.out) as { name: string; tasks: { task: string; prompt: string }[]; cached: string[] }[];
    expect(rows.length).toBe(defaultRegistry().length);
    expect(rows.find((r) => r.name === "pg1-3b-ft-cococap-448")).toMatchObject({
      tasks: [{ task: "caption", prompt: "caption en" }],
      cached: [],
    });
  });

  it("summarizes an entry's tasks", () => {
    const entry = defaultRegistry().find((e) => e.name === "pg1-3b-pt-896");
    expect(entry && taskSummary(entry)).toBe("caption,ocr,vqa,question,detect,segment");
  });
});
