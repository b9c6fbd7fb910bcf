/**
 * `pali label` as a user runs it, on the demo model: a folder with a bad image in it, kill -9 mid-run and the
 * same command again (no duplicate, no torn line), COCO output, and the argument errors.
 */
import { spawn, spawnSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CocoDataset, LabelRecord } from "@pali/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const bin = join(root, "packages", "cli", "dist", "bin.js");
const model = join(root, "models", "demo", "pali-demo-q8_0.gguf");

let dir: string;
let images: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-cli-label-"));
  images = join(dir, "images");
  await cp(join(root, "models", "demo", "heldout"), join(images, "set"), { recursive: true });
  await rm(join(images, "set", "ground-truth.json"));
  await writeFile(join(images, "set", "050-broken.png"), "this is not a PNG");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function label(args: string[]) {
  return spawnSync(process.execPath, [bin, "label", ...args], { cwd: dir, encoding: "utf8" });
}

async function records(path: string): Promise<LabelRecord[]> {
  const text = await readFile(path, "utf8");
  expect(text === "" || text.endsWith("\n")).toBe(true);
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as LabelRecord);
}

describe("pali label", () => {
  it("labels a folder, records the bad image, and resumes after kill -9 with each image once", async () => {
    const args = ["images", "--task", "caption", "-m", model, "--threads", "1"];
    const full = label([...args, "--out", "full.jsonl", "--json"]);
    expect(full.status, full.stderr).toBe(0);
    expect(JSON.parse(full.stdout)).toMatchObject({ total: 101, labeled: 101, failed: 1, skipped: 0, remaining: 0 });
    const reference = await records(join(dir, "full.jsonl"));
    expect(reference.map((r) => r.image)).toEqual(
      [...Array(100).keys()].flatMap((i) => [
        ...(i === 50 ? ["images/set/050-broken.png"] : []),
        `images/set/${String(i).padStart(3, "0")}.png`,
      ]),
    );
    expect(reference.find((r) => r.image.endsWith("broken.png"))).toMatchObject({ error: { code: "ERR_IMAGE_DECODE" } });

    // The same run, killed with SIGKILL once it has written 30 lines.
    const out = join(dir, "resumed.jsonl");
    const child = spawn(process.execPath, [bin, "label", ...args, "--out", out], { cwd: dir, stdio: "ignore" });
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(async () => {
        const text = await readFile(out, "utf8").catch(() => "");
        if (text.split("\n").length > 30) {
          clearInterval(timer);
          child.kill("SIGKILL");
          resolve();
        } else if (child.exitCode !== null) {
          clearInterval(timer);
          reject(new Error("the run ended before it could be killed"));
        }
      }, 5);
    });
    await new Promise((r) => child.once("exit", r));
    // Simulate the worst case too: a line cut in the middle of its write.
    await writeFile(out, '{"image":"images/set/099.png","task":"cap', { flag: "a" });
    const partial = (await readFile(out, "utf8")).split("\n").length - 1;
    const resumed = label([...args, "--out", out, "--json"]);
    expect(resumed.status, resumed.stderr).toBe(0);
    const summary = JSON.parse(resumed.stdout) as { skipped: number; labeled: number };
    expect(summary.skipped).toBe(partial);
    expect(summary.skipped + summary.labeled).toBe(101);
    const got = await records(out);
    expect(got).toHaveLength(101);
    expect(new Set(got.map((r) => r.image)).size).toBe(101);
    const byImage = new Map(reference.map((r) => [r.image, r]));
    for (const r of got) expect(r, r.image).toEqual(byImage.get(r.image));
  }, 300_000);

  it("writes a COCO dataset for detect, and refuses bad arguments with exit 2", async () => {
    const coco = label([
      "images/set/00*.png",
      "--task",
      "detect",
      "-l",
      "circle ; square ; triangle",
      "-m",
      model,
      "--out",
      "d.json",
      "--format",
      "coco",
    ]);
    expect(coco.status, coco.stderr).toBe(0);
    expect(coco.stderr).toContain("labeled 10 images");
    const dataset = JSON.parse(await readFile(join(dir, "d.json"), "utf8")) as CocoDataset;
    expect(dataset.images.map((i) => i.file_name)).toEqual([...Array(10).keys()].map((i) => `images/set/00${i}.png`));
    expect(dataset.categories).toEqual([
      { id: 1, name: "circle" },
      { id: 2, name: "square" },
      { id: 3, name: "triangle" },
    ]);
    expect(dataset.annotations.length).toBeGreaterThanOrEqual(10);
    const lines = await records(join(dir, "d.json.jsonl"));
    const boxes = lines.reduce((n, r) => n + ("result" in r ? (r.result.detections?.length ?? 0) : 0), 0);
    expect(dataset.annotations).toHaveLength(boxes);

    const bad: [string[], string][] = [
      [["images", "--out", "x.jsonl", "-m", model], "--task"],
      [["images", "--task", "detect", "--out", "x.jsonl", "-m", model], "needs labels"],
      [["images", "--task", "caption", "-m", model], "--out"],
      [["nowhere", "--task", "caption", "--out", "x.jsonl", "-m", model], "No such file or folder: nowhere"],
      [["images", "--task", "caption", "--out", "x.jsonl", "--format", "coco", "-m", model], "detect and segment"],
      [["images", "--task", "caption", "--prompt", "hi", "--out", "x.jsonl", "-m", model], "--prompt"],
      [["images", "--task", "caption", "--out", "full.jsonl", "--lang", "de", "-m", model], "another labeling"],
      [["images", "--task", "caption", "--out", "x.jsonl", "--queue", "q", "-m", model], "--redis"],
    ];
    for (const [args, message] of bad) {
      const r = label(args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toContain(message);
      expect(r.stderr).toContain("[ERR_INVALID_ARGUMENT]");
    }
    const two = spawnSync(process.execPath, [bin, "caption", "-m", model, "-i", "a.png", "-i", "b.png"], {
      cwd: dir,
      encoding: "utf8",
    });
    expect(two.status).toBe(2);
    expect(two.stderr).toContain("use pali label");
  }, 300_000);
});
