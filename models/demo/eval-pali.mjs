// Accuracy of the converted demo model (GGUF, run by pali) on the held-out shapes images: no Python needed.
//
//   node models/demo/eval-pali.mjs [--model models/demo/pali-demo-q8_0.gguf] [--heldout models/demo/heldout]
//                                  [--count 100] [--json OUT] [--min-miou 0.7] [--min-caption 0.8]
//
// Greedy decoding through the SDK's task methods (caption, detect, segment), as a user would call them. The
// metrics are those of evaluate.py (the Python/HF side): caption exact match, and detection mean IoU over
// ground-truth objects (per image and class, the one-to-one matching with the largest total IoU; an
// unmatched object scores 0). Segmentation: per image, "segment <class of the leftmost object>"; the IoU of
// the union of the predicted binary masks with the union of that class's ground-truth masks, averaged.
// Exits 1 when a figure is below its --min-* threshold. evaluateDemo() is exported for a vitest end-to-end test.
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");

export function iou(a, b) {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** k-permutations of 0..n-1 */
function* permutations(n, k, prefix = []) {
  if (prefix.length === k) {
    yield prefix;
    return;
  }
  for (let i = 0; i < n; i++) if (!prefix.includes(i)) yield* permutations(n, k, [...prefix, i]);
}

/** Each ground-truth object's IoU with its match (0 when unmatched) and the count of unmatched predictions. */
export function matchImage(gt, pred) {
  const ious = [];
  let extra = 0;
  const labels = [...new Set([...gt.map((o) => o.label), ...pred.map((p) => p.label)])].sort();
  for (const label of labels) {
    const g = gt.filter((o) => o.label === label).map((o) => o.box);
    const p = pred.filter((o) => o.label === label).map((o) => o.box);
    let best = -1;
    let bestPairs = [];
    if (p.length >= g.length) {
      for (const perm of permutations(p.length, g.length)) {
        const pairs = perm.map((j, i) => iou(g[i], p[j]));
        const sum = pairs.reduce((x, y) => x + y, 0);
        if (sum > best) [best, bestPairs] = [sum, pairs];
      }
    } else {
      for (const perm of permutations(g.length, p.length)) {
        const pairs = new Array(g.length).fill(0);
        perm.forEach((i, j) => {
          pairs[i] = iou(g[i], p[j]);
        });
        const sum = pairs.reduce((x, y) => x + y, 0);
        if (sum > best) [best, bestPairs] = [sum, pairs];
      }
    }
    ious.push(...bestPairs);
    extra += Math.max(0, p.length - g.length);
  }
  return { ious, extra };
}

/** A binary mask from the ground truth's run lengths (row-major, starting with zeros). */
export function maskFromRuns(runs, width, height) {
  const mask = new Uint8Array(width * height);
  let pos = 0;
  runs.forEach((n, i) => {
    if (i % 2 === 1) mask.fill(1, pos, pos + n);
    pos += n;
  });
  return mask;
}

function maskIou(a, b) {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i] & b[i];
    union += a[i] | b[i];
  }
  return union > 0 ? inter / union : 1;
}

export async function evaluateDemo({
  model = join(here, "pali-demo-q8_0.gguf"),
  heldout = join(here, "heldout"),
  count = Infinity,
  threads,
  onImage,
  sdk, // { PaliGemma } (default: packages/sdk/dist), so that a vitest test can pass its own import of the sources
} = {}) {
  const { PaliGemma } = sdk ?? (await import(join(root, "packages/sdk/dist/index.js")));
  const truth = JSON.parse(await readFile(join(heldout, "ground-truth.json"), "utf8"));
  const items = truth.images.slice(0, count);
  const labels = ["circle", "square", "triangle"];
  // the mask decoder (mask-decoder-f32.gguf) and the mmproj are found beside the model
  const pg = await PaliGemma.load({ model, ...(threads ? { threads } : {}) });
  const started = performance.now();
  const outputs = [];
  let exact = 0;
  let extra = 0;
  const ious = [];
  const maskIous = [];
  try {
    for (const item of items) {
      const size = { imageWidth: item.width, imageHeight: item.height };
      const image = await pg.encodeImage(join(heldout, item.file));
      const caption = await pg.caption(image, size);
      const detect = await pg.detect(image, labels, size);
      const pred = detect.detections.map((d) => ({
        label: d.label,
        box: [
          d.normalized.x1 * item.width,
          d.normalized.y1 * item.height,
          d.normalized.x2 * item.width,
          d.normalized.y2 * item.height,
        ],
      }));
      const m = matchImage(item.objects, pred);
      ious.push(...m.ious);
      extra += m.extra;
      if (caption.text === item.caption) exact++;
      // segmentation: the class of the leftmost object; every instance of it, as one mask
      const label = item.objects[0].label;
      const segment = await pg.segment(image, label, size);
      const predicted = new Uint8Array(item.width * item.height);
      for (const s of segment.segmentations) for (let i = 0; i < predicted.length; i++) predicted[i] |= s.mask.binary[i];
      const wanted = new Uint8Array(item.width * item.height);
      for (const o of item.objects.filter((o) => o.label === label)) {
        const g = maskFromRuns(o.mask_rle, item.width, item.height);
        for (let i = 0; i < wanted.length; i++) wanted[i] |= g[i];
      }
      maskIous.push(maskIou(predicted, wanted));
      const out = { file: item.file, caption: caption.text, detect: detect.text, segment: segment.text };
      outputs.push(out);
      onImage?.(out, item);
    }
  } finally {
    await pg.dispose();
  }
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    model,
    images: items.length,
    objects: ious.length,
    caption_exact: exact / items.length,
    detection_miou: mean(ious),
    "objects_iou_ge_0.5": mean(ious.map((v) => (v >= 0.5 ? 1 : 0))),
    false_positives: extra,
    detect_target_exact: mean(outputs.map((o, i) => (o.detect === items[i].detect_target ? 1 : 0))),
    segment_mask_miou: mean(maskIous),
    seconds: Math.round((performance.now() - started) / 100) / 10,
    outputs,
  };
}

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const verbose = process.argv.includes("-v");
  const result = await evaluateDemo({
    model: resolve(arg("--model", join(here, "pali-demo-q8_0.gguf"))),
    heldout: resolve(arg("--heldout", join(here, "heldout"))),
    count: Number(arg("--count", "Infinity")),
    threads: arg("--threads") ? Number(arg("--threads")) : undefined,
    onImage: verbose
      ? (out, item) => {
          if (out.caption !== item.caption || out.detect !== item.detect_target)
            console.error(
              `${item.file} ${JSON.stringify(out.caption)} want ${JSON.stringify(item.caption)}\n  ${out.detect}\n  ${item.detect_target}`,
            );
        }
      : undefined,
  });
  const { outputs, ...summary } = result;
  console.log(JSON.stringify(summary, null, 1));
  const json = arg("--json");
  if (json) await writeFile(json, `${JSON.stringify(result, null, 1)}\n`);
  const minMiou = Number(arg("--min-miou", "0"));
  const minCaption = Number(arg("--min-caption", "0"));
  if (summary.detection_miou < minMiou || summary.caption_exact < minCaption) process.exit(1);
}
