/**
 * The task endpoints on the demo model, as JSON (base64 and data URLs) and as multipart uploads: what the
 * SDK returns, JSON-safe, with COCO output for detect and PNG masks for segment.
 */
import { readFile } from "node:fs/promises";
import { type CocoDataset, toCocoDataset } from "@pali/sdk";
import { decodeRle } from "@pali/tasks";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { example, exampleBase64, type Loose, post, postJson, startServer, type TestServer } from "./helpers.js";

let t: TestServer;
let image: string;

beforeAll(async () => {
  t = await startServer();
  image = await exampleBase64(2);
});
afterAll(async () => {
  await t?.server.close();
});

async function postForm(path: string, fields: Record<string, string | string[]>, file?: { name: string; bytes: Buffer }) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) for (const one of [v].flat()) form.append(k, one);
  if (file) form.append("image", new Blob([new Uint8Array(file.bytes)], { type: "image/png" }), file.name);
  return post(`${t.url}${path}`, form);
}

describe("task endpoints", () => {
  it("caption, answer and ocr return the SDK's text, image size, timings and usage", async () => {
    const caption = await postJson(`${t.url}/v1/caption`, { image });
    expect(caption.status).toBe(200);
    const sdk = await t.pg.caption(example(2));
    expect(caption.json).toMatchObject({ width: 448, height: 448, text: sdk.text, finish_reason: "stop" });
    expect(caption.json.usage).toEqual({
      prompt_tokens: sdk.result.timings.prefillTokens,
      completion_tokens: sdk.result.tokens.length,
      total_tokens: sdk.result.timings.prefillTokens + sdk.result.tokens.length,
    });
    expect(Object.keys(caption.json.timings)).toEqual(Object.keys(sdk.result.timings));

    const long = await postJson(`${t.url}/v1/caption`, {
      image: `data:image/png;base64,${image}`,
      lang: "en",
      long: true,
      max_tokens: 4,
    });
    expect(long.json.text).toBe((await t.pg.caption(example(2), { long: true, maxTokens: 4 })).text);
    const short = await postJson(`${t.url}/v1/caption`, { image, max_tokens: 3 });
    expect([short.json.finish_reason, short.json.usage.completion_tokens]).toEqual(["length", 3]);

    const answer = await postJson(`${t.url}/v1/answer`, { image, question: "what is this?", lang: "en" });
    expect(answer.json.text).toBe((await t.pg.ask(example(2), "what is this?")).text);
    const ocr = await postJson(`${t.url}/v1/ocr`, { image, max_tokens: 8 });
    expect([ocr.status, ocr.json.text]).toEqual([200, (await t.pg.ocr(example(2), { maxTokens: 8 })).text]);
  });

  it("detect returns pixel boxes with scores; ?format=coco a COCO dataset", async () => {
    const r = await postJson(`${t.url}/v1/detect`, { image, labels: "circle ; triangle" });
    expect(r.status).toBe(200);
    const sdk = await t.pg.detect(example(2), ["circle", "triangle"]);
    expect(r.json.detections).toEqual(sdk.detections.map(({ label, box, score }) => ({ label, box, score })));
    expect(r.json.detections.map((d: { label: string }) => d.label)).toEqual(["triangle", "circle"]);
    expect(r.json).toMatchObject({ width: 448, height: 448, text: sdk.text });

    const array = await postJson(`${t.url}/v1/detect`, { image, labels: ["circle", "triangle"] });
    expect(array.json.detections).toEqual(r.json.detections);

    const coco = await postJson(`${t.url}/v1/detect?format=coco`, { image, labels: ["circle", "triangle"] });
    expect(coco.status).toBe(200);
    const dataset = coco.json as CocoDataset;
    expect(dataset.categories).toEqual([
      { id: 1, name: "circle" },
      { id: 2, name: "triangle" },
    ]);
    expect(dataset.images).toEqual([{ id: 1, file_name: "image", width: 448, height: 448 }]);
    const { date_created: _, ...info } = dataset.info;
    const expected = toCocoDataset(
      [{ image: "image", task: "detect", prompt: "detect circle ; triangle", result: { width: 448, height: 448, ...r.json } }],
      { task: "detect", prompt: "detect circle ; triangle", labels: ["circle", "triangle"], long: false },
    );
    expect(dataset.annotations).toEqual(expected.annotations);
    expect(info).toEqual({ description: "pali label: detect circle ; triangle" });
  });

  it("segment returns RLE masks with areas, PNGs of the same masks with png: true, and COCO", async () => {
    const five = await exampleBase64(5);
    const r = await postJson(`${t.url}/v1/segment`, { image: five, labels: "circle", png: true });
    expect(r.status).toBe(200);
    const sdk = await t.pg.segment(example(5), "circle");
    expect(r.json.segmentations).toHaveLength(2);
    for (const [i, s] of (r.json.segmentations as Loose[]).entries()) {
      const expected = sdk.segmentations[i];
      expect(s).toMatchObject({ label: "circle", box: expected?.box, score: expected?.score, rle: expected?.mask.rle });
      expect(s.area).toBe(expected?.mask.binary.reduce((a, b) => a + b, 0));
      expect(s.png).toMatch(/^data:image\/png;base64,/);
      const png = Buffer.from(s.png.split(",")[1], "base64");
      const meta = await sharp(png).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(["png", 448, 448, 1]);
      const { data } = await sharp(png).toColourspace("b-w").raw().toBuffer({ resolveWithObject: true });
      const mask = decodeRle(s.rle);
      let differing = 0;
      for (let p = 0; p < mask.length; p++) if ((data[p] as number) > 127 !== (mask[p] === 1)) differing++;
      expect(differing).toBe(0);
    }
    const plain = await postJson(`${t.url}/v1/segment`, { image: five, expression: "circle" });
    expect(plain.json.segmentations.map((s: { rle: unknown }) => s.rle)).toEqual(
      r.json.segmentations.map((s: { rle: unknown }) => s.rle),
    );
    expect(plain.json.segmentations[0].png).toBeUndefined();
    const coco = await postJson(`${t.url}/v1/segment?format=coco`, { image: five, labels: ["circle"] });
    expect((coco.json as CocoDataset).annotations.map((a) => a.segmentation)).toEqual(sdk.segmentations.map((s) => s.mask.rle));
    const both = await postJson(`${t.url}/v1/segment`, { image: five, labels: "circle", expression: "circle" });
    expect([both.status, both.json.error.code]).toEqual([400, "ERR_INVALID_ARGUMENT"]);
  });

  it("score returns the suffix's log-probabilities as pg.score does", async () => {
    const suffix = "a red triangle and a purple circle";
    const r = await postJson(`${t.url}/v1/score`, { image, prompt: "caption en", suffix });
    expect(r.status).toBe(200);
    const sdk = await t.pg.score({ image: example(2), prompt: "caption en", suffix });
    expect(r.json).toEqual({ width: 448, height: 448, tokens: sdk.tokens, logprobs: sdk.logprobs, total: sdk.total });
  });

  it("takes multipart uploads: the file field image, the other fields converted to their types", async () => {
    const bytes = await readFile(example(2));
    const file = { name: "shapes.png", bytes };
    const caption = await postForm("/v1/caption", { max_tokens: "4", long: "false" }, file);
    expect(caption.status, JSON.stringify(caption.json)).toBe(200);
    expect(caption.json.text).toBe((await t.pg.caption(example(2), { maxTokens: 4 })).text);
    const answer = await postForm("/v1/answer", { question: "what is this?" }, file);
    expect(answer.json.text).toBe((await t.pg.ask(example(2), "what is this?")).text);
    expect((await postForm("/v1/ocr", {}, file)).status).toBe(200);
    const detect = await postForm("/v1/detect", { labels: ["circle", "triangle"] }, file);
    const json = await postJson(`${t.url}/v1/detect`, { image, labels: ["circle", "triangle"] });
    expect(detect.json.detections).toEqual(json.json.detections);
    const coco = await postForm("/v1/detect?format=coco", { labels: "circle ; triangle" }, file);
    expect((coco.json as CocoDataset).images[0]?.file_name).toBe("shapes.png");
    const segment = await postForm(
      "/v1/segment",
      { labels: "circle", png: "true" },
      { name: "five.png", bytes: await readFile(example(5)) },
    );
    expect(segment.json.segmentations).toHaveLength(2);
    expect(segment.json.segmentations[0].png).toMatch(/^data:image\/png;base64,/);
    const score = await postForm("/v1/score", { prompt: "caption en", suffix: "a red triangle" }, file);
    expect(score.json.total).toBeCloseTo(
      (await t.pg.score({ image: example(2), prompt: "caption en", suffix: "a red triangle" })).total,
      6,
    );

    // The image may also be a base64 form field; wrong types and stray files are refused.
    expect((await postForm("/v1/caption", { image })).status).toBe(200);
    const badType = await postForm("/v1/caption", { max_tokens: "many" }, file);
    expect([badType.status, badType.json.error.code]).toEqual([400, "ERR_INVALID_ARGUMENT"]);
    const form = new FormData();
    form.append("picture", new Blob([bytes]), "x.png");
    const stray = await post(`${t.url}/v1/caption`, form);
    expect([stray.status, stray.json.error.code]).toEqual([400, "ERR_INVALID_ARGUMENT"]);
    const missing = await postForm("/v1/caption", { long: "true" });
    expect([missing.status, missing.json.error.code]).toEqual([400, "ERR_INVALID_ARGUMENT"]);
  });
});
