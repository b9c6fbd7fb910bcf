// The callbacks handed to page.evaluate run in the browser: they need the DOM's types (this file only; the
// server's build, which is src alone, stays without them).
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The web playground in a real browser: the server on the demo model (createServer, on a loopback port, with
 * an API key), Debian's chromium driven by playwright-core, an image uploaded through the file input, and
 * detect, segment and caption run from the page. The drawn boxes and masks are read back from the DOM and
 * compared with what the server answered and, roughly, with the demo's ground truth. Screenshots go to
 * packages/server/test-artifacts/ (git-ignored).
 */
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PaliGemma } from "@pali/sdk";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type PaliServer } from "../src/index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const model = join(root, "models", "demo", "pali-demo-q8_0.gguf");
const examples = join(root, "models", "demo", "examples");
const artifacts = join(root, "packages", "server", "test-artifacts");
const chromiumPath = "/usr/bin/chromium";
const haveChromium = existsSync(chromiumPath);
if (!haveChromium) console.warn(`playground.test.ts skipped: no ${chromiumPath} (apt-get install chromium; .ci/run does)`);

interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}
interface TruthObject {
  label: string;
  box: [number, number, number, number];
  area: number;
}
interface TruthImage {
  file: string;
  width: number;
  height: number;
  caption: string;
  objects: TruthObject[];
}
interface Found {
  label: string;
  box: Box;
  score: number;
  area?: number;
}

function iou(a: Box, b: Box): number {
  const w = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const h = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (w <= 0 || h <= 0) return 0;
  const area = (r: Box) => (r.x2 - r.x1) * (r.y2 - r.y1);
  return (w * h) / (area(a) + area(b) - w * h);
}

const asBox = ([x1, y1, x2, y2]: [number, number, number, number]): Box => ({ x1, y1, x2, y2 });

/** The ground-truth object of that label that overlaps the box most. */
function bestTruth(truth: TruthImage, found: Found): { object: TruthObject; iou: number } {
  const candidates = truth.objects
    .filter((o) => o.label === found.label)
    .map((o) => ({ object: o, iou: iou(asBox(o.box), found.box) }));
  expect(candidates.length, `no ${found.label} in ${truth.file}'s ground truth`).toBeGreaterThan(0);
  return candidates.reduce((a, b) => (b.iou > a.iou ? b : a));
}

describe.skipIf(!haveChromium)(`the playground in chromium (needs ${chromiumPath})`, () => {
  let server: PaliServer;
  let base: string;
  let browser: Browser;
  let page: Page;
  let truth: Map<string, TruthImage>;
  const pageErrors: string[] = [];
  const apiKey = "playground-test-key";

  beforeAll(async () => {
    const data = JSON.parse(await readFile(join(examples, "ground-truth.json"), "utf8")) as { images: TruthImage[] };
    truth = new Map(data.images.map((image) => [image.file, image]));
    await mkdir(artifacts, { recursive: true });

    server = await createServer({ load: () => PaliGemma.load({ model, threads: 1 }), port: 0, apiKey, logger: () => {} });
    base = await server.listen();
    await server.ready();

    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on("pageerror", (error) => pageErrors.push(`pageerror: ${error.message}`));
    page.on("console", (message) => {
      // A 4xx answer is logged by chromium itself; the error test expects one.
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
        pageErrors.push(`console: ${message.text()}`);
      }
    });
    // Nothing but the server itself: the page must not need the network.
    await page.route("**/*", (route) => (route.request().url().startsWith(base) ? route.continue() : route.abort()));
    await page.goto(`${base}/`);
    await page.getByTestId("status").filter({ hasText: "Model:" }).waitFor();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function upload(file: string): Promise<void> {
    await page.getByTestId("file").setInputFiles(join(examples, file));
    await shown(file);
  }

  /** Waits until the page shows that image. */
  async function shown(file: string): Promise<void> {
    await page.waitForFunction((name) => {
      const img = document.querySelector<HTMLImageElement>("[data-testid=image]");
      return img?.alt.endsWith(name) === true && img.complete && img.naturalWidth > 0;
    }, file);
  }

  /** Runs the task from the page and returns what the server answered it. */
  async function runTask<T>(task: string, text: string, path: string): Promise<T> {
    await page.getByTestId("task").selectOption(task);
    await page.getByTestId("text").fill(text);
    const response = page.waitForResponse((res) => res.url() === `${base}${path}` && res.request().method() === "POST");
    await page.getByTestId("run").click();
    const res = await response;
    expect(res.status(), await res.text()).toBe(200);
    await page.locator("[data-testid=output][data-done]").waitFor();
    await expect.poll(() => page.getByTestId("run").isEnabled()).toBe(true);
    expect(await page.getByTestId("error").isHidden()).toBe(true);
    return (await res.json()) as T;
  }

  it("asks for the API key when the server refuses without one, and keeps it in this browser", async () => {
    await upload("002.png");
    await page.getByTestId("task").selectOption("caption");
    await page.getByTestId("run").click();
    const error = page.getByTestId("error");
    await error.waitFor({ state: "visible" });
    expect(await error.textContent()).toContain("API key");
    const key = page.getByTestId("api-key");
    expect(await key.isVisible()).toBe(true);
    await key.fill(apiKey);
    expect(await page.evaluate(() => localStorage.getItem("pali.apiKey"))).toBe(apiKey);
    await page.reload();
    await page.getByTestId("status").filter({ hasText: "Model:" }).waitFor();
    expect(await key.inputValue()).toBe(apiKey);
  });

  it("detects: one box per detection, labelled, where the server put it and near the ground truth", async () => {
    const file = "002.png";
    const image = truth.get(file) as TruthImage;
    await upload(file);
    const result = await runTask<{ width: number; height: number; text: string; detections: Found[]; timings: object }>(
      "detect",
      "circle ; square ; triangle",
      "/v1/detect",
    );
    expect(result).toMatchObject({ width: image.width, height: image.height });
    expect(result.detections.map((d) => d.label).sort()).toEqual(image.objects.map((o) => o.label).sort());

    const drawn = await page.$$eval("[data-testid=box]", (boxes) => {
      const img = document.querySelector("[data-testid=image]") as HTMLImageElement;
      const frame = img.getBoundingClientRect();
      return boxes.map((el) => {
        const r = el.getBoundingClientRect();
        const sx = img.naturalWidth / frame.width;
        const sy = img.naturalHeight / frame.height;
        return {
          label: (el as HTMLElement).dataset.label,
          tag: el.textContent,
          // back to image pixels, from where the box is on screen
          box: {
            x1: (r.left - frame.left) * sx,
            y1: (r.top - frame.top) * sy,
            x2: (r.right - frame.left) * sx,
            y2: (r.bottom - frame.top) * sy,
          },
          visible: r.width > 0 && r.height > 0,
        };
      });
    });
    expect(drawn).toHaveLength(result.detections.length);
    result.detections.forEach((detection, i) => {
      const box = drawn[i];
      expect(box?.label).toBe(detection.label);
      expect(box?.visible).toBe(true);
      expect(box?.tag).toBe(`${detection.label} ${detection.score.toFixed(2)}`);
      for (const k of ["x1", "y1", "x2", "y2"] as const)
        expect(Math.abs((box?.box[k] ?? Number.NaN) - detection.box[k])).toBeLessThan(1.5);
      expect(bestTruth(image, detection).iou).toBeGreaterThan(0.6);
    });
    expect(await page.getByTestId("output").textContent()).toBe(result.text);
    const timings = await page.$$eval("[data-testid=timings] dd", (dds) => dds.map((dd) => (dd as HTMLElement).dataset.key));
    expect(timings).toEqual(expect.arrayContaining(["imageEncodeMs", "prefillMs", "decodeMs", "totalMs"]));
    await page.screenshot({ path: join(artifacts, "playground.png"), fullPage: true });
  });

  it("segments: one mask canvas per instance, its painted area the server's, inside its box", async () => {
    const file = "005.png";
    const image = truth.get(file) as TruthImage;
    await upload(file);
    const result = await runTask<{ width: number; height: number; segmentations: Found[] }>("segment", "circle", "/v1/segment");
    const circles = image.objects.filter((o) => o.label === "circle");
    expect(result.segmentations).toHaveLength(circles.length);

    const masks = await page.$$eval("canvas[data-testid=mask]", (canvases) =>
      canvases.map((el) => {
        const canvas = el as HTMLCanvasElement;
        const { data } = (canvas.getContext("2d") as CanvasRenderingContext2D).getImageData(0, 0, canvas.width, canvas.height);
        let area = 0;
        let sx = 0;
        let sy = 0;
        for (let i = 3; i < data.length; i += 4) {
          if ((data[i] as number) === 0) continue;
          const p = (i - 3) / 4;
          area++;
          sx += p % canvas.width;
          sy += Math.floor(p / canvas.width);
        }
        const img = document.querySelector("[data-testid=image]") as HTMLImageElement;
        const a = canvas.getBoundingClientRect();
        const b = img.getBoundingClientRect();
        return {
          label: canvas.dataset.label,
          width: canvas.width,
          height: canvas.height,
          area,
          centre: { x: sx / area, y: sy / area },
          coversImage: Math.abs(a.left - b.left) < 1 && Math.abs(a.top - b.top) < 1 && Math.abs(a.width - b.width) < 1,
        };
      }),
    );
    expect(masks).toHaveLength(result.segmentations.length);
    result.segmentations.forEach((segmentation, i) => {
      const mask = masks[i];
      expect(mask).toMatchObject({ label: "circle", width: image.width, height: image.height, coversImage: true });
      expect(segmentation.area).toBeGreaterThan(0);
      // The canvas is painted at the image's own size, so the count is exact up to decoding the RLE.
      expect(Math.abs((mask?.area ?? 0) - (segmentation.area as number))).toBeLessThanOrEqual(
        0.01 * (segmentation.area as number),
      );
      // A transposed (row- for column-major) decode would move each circle off its box.
      const { x1, y1, x2, y2 } = segmentation.box;
      expect(mask?.centre.x).toBeGreaterThan(x1 + (x2 - x1) * 0.3);
      expect(mask?.centre.x).toBeLessThan(x2 - (x2 - x1) * 0.3);
      expect(mask?.centre.y).toBeGreaterThan(y1 + (y2 - y1) * 0.3);
      expect(mask?.centre.y).toBeLessThan(y2 - (y2 - y1) * 0.3);
      const nearest = bestTruth(image, segmentation);
      expect(nearest.iou).toBeGreaterThan(0.6);
      expect(Math.abs((mask?.area ?? 0) - nearest.object.area) / nearest.object.area).toBeLessThan(0.3);
    });
    expect(await page.getByTestId("box").count()).toBe(result.segmentations.length);
    await page.screenshot({ path: join(artifacts, "playground-segment.png"), fullPage: true });
  });

  it("captions: the tokens stream into the output, ending in the demo's caption", async () => {
    const file = "002.png";
    await upload(file);
    // Collect the text the page adds to the output: a streamed answer arrives in pieces, not as one write.
    await page.evaluate(() => {
      const output = document.querySelector("[data-testid=output]") as HTMLElement;
      const pieces: string[] = [];
      (window as unknown as { pieces: string[] }).pieces = pieces;
      new MutationObserver((records) => {
        for (const record of records) for (const node of record.addedNodes) pieces.push(node.textContent ?? "");
      }).observe(output, { childList: true });
    });
    await page.getByTestId("task").selectOption("caption");
    expect(await page.getByTestId("text").isHidden()).toBe(true);
    const request = page.waitForRequest((req) => req.url() === `${base}/v1/chat/completions`);
    await page.getByTestId("run").click();
    const body = (await request).postDataJSON() as {
      stream: boolean;
      messages: { content: { type: string; text?: string }[] }[];
    };
    expect(body.stream).toBe(true);
    expect(body.messages[0]?.content.find((c) => c.type === "text")?.text).toBe("caption en");
    await page.locator("[data-testid=output][data-done]").waitFor();
    const caption = (truth.get(file) as TruthImage).caption;
    expect(await page.getByTestId("output").textContent()).toBe(caption);
    const pieces = await page.evaluate(() => (window as unknown as { pieces: string[] }).pieces);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(caption);
    expect(await page.getByTestId("error").isHidden()).toBe(true);
    expect(await page.getByTestId("box").count()).toBe(0);
    await page.screenshot({ path: join(artifacts, "playground-caption.png"), fullPage: true });
  });

  it("takes an image dropped on the drop zone", async () => {
    const file = "003.png";
    const bytes = (await readFile(join(examples, file))).toString("base64");
    const transfer = await page.evaluateHandle(
      ([name, base64]) => {
        const data = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        const t = new DataTransfer();
        t.items.add(new File([data], name, { type: "image/png" }));
        return t;
      },
      [file, bytes] as const,
    );
    const drop = page.getByTestId("drop");
    await drop.dispatchEvent("dragover", { dataTransfer: transfer });
    await drop.dispatchEvent("drop", { dataTransfer: transfer });
    await shown(file);
    await page.getByTestId("task").selectOption("caption");
    await page.getByTestId("run").click();
    await page.locator("[data-testid=output][data-done]").waitFor();
    expect(await page.getByTestId("output").textContent()).toBe((truth.get(file) as TruthImage).caption);
  });

  it("shows the server's error message in the error element", async () => {
    await page.getByTestId("task").selectOption("detect");
    await page.getByTestId("text").fill(";");
    // Only separators: the page lets the server refuse it and shows why.
    await page.getByTestId("run").click();
    await page.getByTestId("error").waitFor({ state: "visible" });
    expect((await page.getByTestId("error").textContent())?.length).toBeGreaterThan(0);
    expect(await page.getByTestId("box").count()).toBe(0);
  });

  it("logged no page errors", () => {
    expect(pageErrors).toEqual([]);
  });
});
