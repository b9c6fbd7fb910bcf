// Captions an image with the demo model, detects its shapes and writes the image with the boxes drawn on it.
//
//   node models/demo/annotate.mjs [IMAGE] [-o OUT.png] [--model models/demo/pali-demo-q8_0.gguf] [--scale 4]
//
// Defaults: models/demo/heldout/000.png, written to demo-annotated.png in the current folder, enlarged 4× (the
// model sees 112×112 pixels). What `pali caption` + `pali detect --annotate` will do once the CLI has them.
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const sharp = createRequire(join(root, "packages/sdk/package.json"))("sharp");
const { PaliGemma } = await import(join(root, "packages/sdk/dist/index.js"));
const { parseDetections, captionPrompt, detectPrompt } = await import(join(root, "packages/tasks/dist/index.js"));

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv.splice(i, 2)[1] : fallback;
};
const model = resolve(opt("--model", join(here, "pali-demo-q8_0.gguf")));
const out = resolve(opt("-o", "demo-annotated.png"));
const scale = Number(opt("--scale", "4"));
const input = resolve(argv[0] ?? join(here, "heldout/000.png"));

const labels = ["circle", "square", "triangle"];
const colours = { circle: "#00e5ff", square: "#ff2bd6", triangle: "#ffffff" };
const pg = await PaliGemma.load({ model });
try {
  const meta = await sharp(input).metadata();
  const image = await pg.encodeImage(input);
  const caption = await pg.generate({ image, prompt: captionPrompt(), maxTokens: 64 });
  const detect = await pg.generate({ image, prompt: detectPrompt(labels), maxTokens: 64 });
  const { detections } = parseDetections(detect.text, { imageWidth: meta.width, imageHeight: meta.height, labels });
  const w = meta.width * scale;
  const h = meta.height * scale;
  const esc = (s) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const shapes = detections.map((d) => {
    const c = colours[d.label] ?? "#ffff00";
    const x = d.normalized.x1 * w;
    const y = d.normalized.y1 * h;
    const bw = (d.normalized.x2 - d.normalized.x1) * w;
    const bh = (d.normalized.y2 - d.normalized.y1) * h;
    return (
      `<rect x="${x}" y="${y}" width="${bw}" height="${bh}" fill="none" stroke="${c}" stroke-width="3"/>` +
      `<text x="${x + 3}" y="${Math.max(14, y - 4)}" font-family="sans-serif" font-size="14" fill="${c}" stroke="#000" stroke-width="0.6">${esc(d.label)}</text>`
    );
  });
  const band = 28;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h + band}">` +
    `<rect x="0" y="${h}" width="${w}" height="${band}" fill="#000"/>` +
    `<text x="6" y="${h + 19}" font-family="sans-serif" font-size="15" fill="#fff">${esc(caption.text)}</text>` +
    `${shapes.join("")}</svg>`;
  const base = await sharp(input)
    .resize(w, h, { kernel: "nearest" })
    .extend({ bottom: band, background: "#000" })
    .png()
    .toBuffer();
  await sharp(base)
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png()
    .toFile(out);
  console.log(
    JSON.stringify(
      { caption: caption.text, detections: detections.map((d) => ({ label: d.label, box: d.box })), annotated: out },
      null,
      1,
    ),
  );
} finally {
  await pg.dispose();
}
