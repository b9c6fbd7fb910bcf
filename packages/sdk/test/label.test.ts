/**
 * Labeling from code: the plan of a task, image discovery, the resumable results file, COCO export, and
 * labelImages() on the demo model's held-out images against the task methods called one by one.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findImages, LabelJournal, type LabelRecord, PaliGemma, planLabels, toCocoDataset } from "../src/index.js";
import { fixtures } from "./helpers.js";

const demo = join(fixtures, "..", "demo");
const heldout = join(demo, "heldout");

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-label-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("planLabels", () => {
  it("makes the task's PaliGemma prompt", () => {
    expect(planLabels({ task: "caption" }).prompt).toBe("caption en");
    expect(planLabels({ task: "caption", lang: "de", long: true }).prompt).toBe("describe de");
    expect(planLabels({ task: "answer", question: "what colour?" }).prompt).toBe("answer en what colour?");
    expect(planLabels({ task: "ocr" }).prompt).toBe("ocr");
    expect(planLabels({ task: "detect", labels: " cat ;dog " }).labels).toEqual(["cat", "dog"]);
    expect(planLabels({ task: "segment", labels: ["the cat"] }).prompt).toBe("segment the cat");
  });

  it("refuses what the task cannot take, with ERR_INVALID_ARGUMENT", () => {
    const bad: unknown[] = [
      { task: "classify" },
      { task: "detect" },
      { task: "caption", labels: "cat" },
      { task: "answer" },
      { task: "ocr", question: "why?" },
      { task: "detect", labels: "cat", long: true },
      { task: "caption", maxTokens: 0 },
      { task: "caption", maxTokens: Number.NaN },
    ];
    for (const spec of bad)
      expect(() => planLabels(spec as never), JSON.stringify(spec)).toThrow(
        expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }),
      );
  });
});

describe("findImages", () => {
  it("takes files as given, searches folders recursively, expands globs, lists each image once", async () => {
    const root = join(dir, "find");
    await mkdir(join(root, "a", "deep"), { recursive: true });
    await mkdir(join(root, ".hidden"), { recursive: true });
    for (const f of ["a/1.png", "a/deep/2.JPG", "a/notes.txt", ".hidden/3.png", "b.webp", "c.bin"])
      await writeFile(join(root, f), "x");
    expect(await findImages(["a"], root)).toEqual(["a/1.png", "a/deep/2.JPG"]);
    expect(await findImages(["a/**/*.png", "a", "c.bin"], root)).toEqual(["a/1.png", "a/deep/2.JPG", "c.bin"]);
    expect(await findImages([join(root, "b.webp")])).toEqual([join(root, "b.webp")]);
    expect(await findImages([join(root, "a")])).toEqual([join(root, "a", "1.png"), join(root, "a", "deep", "2.JPG")]);
    await expect(findImages(["nope.png"], root)).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringContaining("nope.png"),
    });
    await expect(findImages(["*.gif"], root)).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(findImages([".hidden/.."], join(root, "a", "deep", "..", ".."))).resolves.toContain("b.webp");
    await expect(findImages([])).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
  });
});

describe("LabelJournal", () => {
  const plan = planLabels({ task: "caption" });
  const record = (image: string): LabelRecord => ({
    image,
    task: "caption",
    prompt: plan.prompt,
    result: { width: 1, height: 1, text: image },
  });

  it("appends whole lines, cuts a torn last line, resumes, and never writes an image twice", async () => {
    const path = join(dir, "journal.jsonl");
    const j1 = await LabelJournal.open(path, plan);
    expect(await j1.append(record("a.png"))).toBe(true);
    expect(await j1.append(record("b.png"))).toBe(true);
    expect(await j1.append(record("a.png"))).toBe(false);
    await j1.close();
    await writeFile(path, '{"image":"c.png","task":"capt', { flag: "a" }); // a kill -9 mid-line
    const j2 = await LabelJournal.open(path, plan);
    expect(j2.repairedBytes).toBe(29);
    expect(j2.resumed).toBe(2);
    expect(j2.has("a.png") && j2.has("b.png") && !j2.has("c.png")).toBe(true);
    await j2.append(record("c.png"));
    await j2.close();
    const lines = (await readFile(path, "utf8")).split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.map((l) => (JSON.parse(l) as LabelRecord).image)).toEqual(["a.png", "b.png", "c.png"]);
  });

  it("refuses a file of another prompt, a second writer, and redoes errors when asked", async () => {
    const path = join(dir, "other.jsonl");
    const j = await LabelJournal.open(path, plan);
    await j.append(record("a.png"));
    await j.append({
      image: "bad.png",
      task: "caption",
      prompt: plan.prompt,
      error: { code: "ERR_IMAGE_DECODE", message: "no" },
    });
    await expect(LabelJournal.open(path, plan)).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringContaining("Another labeling run"),
    });
    await j.close();
    await expect(LabelJournal.open(path, planLabels({ task: "ocr" }))).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
      message: expect.stringContaining('"caption en"'),
    });
    // A lock left by a process that no longer runs is taken over.
    await writeFile(`${path}.lock`, "999999999");
    const kept = await LabelJournal.open(path, plan);
    expect(kept.has("bad.png")).toBe(true);
    await kept.close();
    const retry = await LabelJournal.open(path, plan, { retryErrors: true });
    expect(retry.has("bad.png")).toBe(false);
    expect(retry.has("a.png")).toBe(true);
    await retry.close();
    expect((await readFile(path, "utf8")).trim().split("\n")).toHaveLength(1);
  });
});

describe("labelImages on the demo model", () => {
  it("gives, for 100 held-out images and a bad one, what the task methods give one by one", async () => {
    await using pg = await PaliGemma.load({ model: join(demo, "pali-demo-q8_0.gguf"), threads: 2 });
    const images = (await findImages([heldout])).concat();
    expect(images).toHaveLength(100);
    const bad = join(dir, "bad.png");
    await writeFile(bad, "not an image");
    const list = [...images.slice(0, 50), bad, ...images.slice(50)];
    const labels = ["circle", "square", "triangle"];
    const records: LabelRecord[] = [];
    for await (const r of pg.labelImages(list, { task: "detect", labels })) records.push(r);
    expect(records.map((r) => r.image)).toEqual(list);
    const failed = records[50] as LabelRecord & { error: { code: string } };
    expect(failed.error.code).toBe("ERR_IMAGE_DECODE");
    let boxes = 0;
    for (const [i, image] of images.entries()) {
      const record = records[i < 50 ? i : i + 1] as LabelRecord;
      if (!("result" in record)) throw new Error(`${image}: ${JSON.stringify(record)}`);
      const one = await pg.detect(image, labels);
      expect(record.result.detections, relative(heldout, image)).toEqual(
        one.detections.map(({ label, box, score }) => ({ label, box, score })),
      );
      expect(record.result.text).toBe(one.text);
      boxes += one.detections.length;
    }
    expect(boxes).toBeGreaterThan(150); // the demo's 100 images hold 236 shapes

    const coco = toCocoDataset(records, planLabels({ task: "detect", labels }));
    expect(coco.images).toHaveLength(100);
    expect(coco.categories.map((c) => c.name)).toEqual(labels);
    expect(coco.annotations.length).toBe(boxes);
    const first = coco.annotations[0];
    expect(first?.id).toBe(1);
    expect(first?.area).toBe((first?.bbox[2] ?? 0) * (first?.bbox[3] ?? 0));
  }, 300_000);

  it("segments with masks as RLE, and refuses segment without a mask decoder before any image", async () => {
    await using pg = await PaliGemma.load({ model: join(demo, "pali-demo-q8_0.gguf"), threads: 2 });
    const images = (await findImages([heldout])).slice(0, 5);
    const records: LabelRecord[] = [];
    for await (const r of pg.labelImages(images, { task: "segment", labels: "circle" })) records.push(r);
    for (const [i, r] of records.entries()) {
      if (!("result" in r)) throw new Error(JSON.stringify(r));
      const one = await pg.segment(images[i] as string, "circle");
      expect(r.result.segmentations?.map((s) => s.rle)).toEqual(one.segmentations.map((s) => s.mask.rle));
      for (const s of r.result.segmentations ?? [])
        expect(s.area).toBe(s.rle.counts.filter((_, k) => k % 2 === 1).reduce((a, b) => a + b, 0));
    }
    const bare = join(dir, "bare");
    await mkdir(bare, { recursive: true });
    for (const f of ["pali-demo-q8_0.gguf", "mmproj-pali-demo-f16.gguf"]) await copyFile(join(demo, f), join(bare, f));
    await using plain = await PaliGemma.load({ model: join(bare, "pali-demo-q8_0.gguf"), threads: 1 });
    expect(pg.canSegment).toBe(true);
    expect(plain.canSegment).toBe(false);
    expect(() => plain.labelImages(images, { task: "segment", labels: "circle" })).toThrow(
      expect.objectContaining({ code: "ERR_UNSUPPORTED_MODEL" }),
    );
    const controller = new AbortController();
    controller.abort();
    await expect(async () => {
      for await (const _ of pg.labelImages(images, { task: "caption" }, { signal: controller.signal })) void _;
    }).rejects.toMatchObject({ code: "ERR_ABORTED" });
  }, 300_000);
});
