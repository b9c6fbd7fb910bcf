/** Draws detections (boxes + labels) and segmentation masks (translucent) over the original image. */
import { rename, rm, stat } from "node:fs/promises";
import { dirname, extname, resolve } from "node:path";
import { InvalidArgumentError, IoError } from "@pali/core";
import sharp from "sharp";

export interface Annotation {
  label: string;
  box: { x1: number; y1: number; x2: number; y2: number };
  score?: number;
  /** 0/1 mask at image size, row-major */
  mask?: Uint8Array;
}

const palette = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"];

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c] as string);
}

const outFormats = { ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp" } as const;

/** --out is checked before the model loads: a format its name says, in a folder that exists. */
export async function checkAnnotatedPath(out: string): Promise<void> {
  if (!(extname(out).toLowerCase() in outFormats))
    throw new InvalidArgumentError(`--out ${out}: name the picture .png, .jpg or .webp (the format follows the name)`);
  const folder = await stat(dirname(resolve(out))).catch(() => undefined);
  if (!folder?.isDirectory())
    throw new InvalidArgumentError(`--out ${out}: the folder ${dirname(out)} does not exist; create it first`);
}

/** Writes the picture (through a temp file renamed into place) of `image` with `annotations` drawn on it. */
export async function writeAnnotated(image: string, annotations: readonly Annotation[], out: string): Promise<void> {
  const base = sharp(image).rotate();
  const { width = 0, height = 0 } = await base
    .metadata()
    .then((m) => (m.orientation && m.orientation >= 5 ? { width: m.height, height: m.width } : m));
  const colors = new Map<string, string>();
  const colorOf = (label: string) => {
    if (!colors.has(label)) colors.set(label, palette[colors.size % palette.length] as string);
    return colors.get(label) as string;
  };
  const layers: sharp.OverlayOptions[] = [];
  for (const a of annotations) {
    if (!a.mask) continue;
    const hex = colorOf(a.label);
    const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
    const rgba = Buffer.alloc(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      if (!a.mask[i]) continue;
      rgba[i * 4] = r;
      rgba[i * 4 + 1] = g;
      rgba[i * 4 + 2] = b;
      rgba[i * 4 + 3] = 110;
    }
    layers.push({ input: rgba, raw: { width, height, channels: 4 }, left: 0, top: 0 });
  }
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(12, Math.round(Math.min(width, height) / 30));
  const shapes = annotations.map((a) => {
    const c = colorOf(a.label);
    const { x1, y1, x2, y2 } = a.box;
    const text = escapeXml(a.score === undefined ? a.label : `${a.label} ${(a.score * 100).toFixed(0)}%`);
    const ty = y1 > font + 4 ? y1 - 4 : y1 + font + 2;
    return `<rect x="${x1}" y="${y1}" width="${Math.max(1, x2 - x1)}" height="${Math.max(1, y2 - y1)}" fill="none" stroke="${c}" stroke-width="${stroke}"/>
<text x="${x1 + 2}" y="${ty}" font-family="sans-serif" font-size="${font}" font-weight="bold" fill="${c}" stroke="white" stroke-width="${Math.max(1, font / 10)}" paint-order="stroke">${text}</text>`;
  });
  layers.push({
    input: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${shapes.join("\n")}</svg>`),
    left: 0,
    top: 0,
  });
  const format = outFormats[extname(out).toLowerCase() as keyof typeof outFormats] ?? "png";
  const temp = `${out}.partial-${process.pid}${extname(out)}`;
  try {
    await base.composite(layers).toFormat(format).toFile(temp);
    await rename(temp, out);
  } catch (cause) {
    await rm(temp, { force: true });
    throw new IoError(`Could not write ${out}: ${(cause as Error).message}. Check that the folder exists and is writable.`, {
      cause,
    });
  }
}
