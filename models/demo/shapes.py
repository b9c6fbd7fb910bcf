"""A seeded world of coloured shapes for the pali demo model.

Every image holds 1–4 non-overlapping, axis-aligned shapes (circle, square, triangle) in one of six colours and
a range of sizes, on a plain, gradient or noisy background. Each sample carries the boxes, the masks, a canonical
caption and the detection target in PaliGemma's format (SPEC §7).

Conventions (the TypeScript end-to-end test relies on them):
- Images are SIZE×SIZE RGB, drawn at the model's resolution, so that no resize happens before the encoder.
- A box is [x1, y1, x2, y2] in pixel edges: the tight bounds of the mask, x2/y2 exclusive (last pixel + 1).
- Location tokens: loc = clip(round(coord / SIZE · 1024), 0, 1023), in the order y1, x1, y2, x2. Decoding with
  loc / 1024 · SIZE (the Hugging Face demo convention that @pali/tasks uses) gives back the edge within 1/2 bin.
- Canonical order: left to right by box centre x. Centres are at least MIN_CENTRE_GAP pixels apart in x, so the
  order is never a near tie.
- Caption grammar: "a red circle", "a red circle and a blue square",
  "a red circle, an orange triangle and a blue square" (commas, then "and" before the last; no Oxford comma;
  "an" before a vowel).
- Detection target for the classes asked for (in any order): the objects of those classes, left to right,
  "<locY1><locX1><locY2><locX2> label" joined by " ; "; "" when none is present.

Usage: python models/demo/shapes.py OUT_DIR [--count N] [--split heldout] [--size 112]   (PNGs and ground truth)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 112
SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (215, 35, 35),
    "green": (35, 160, 55),
    "blue": (35, 75, 215),
    "yellow": (235, 200, 25),
    "purple": (140, 50, 175),
    "orange": (245, 130, 25),
}
MIN_SIDE, MAX_SIDE = 0.20, 0.42  # shape side as a fraction of SIZE
GAP = 3  # pixels between boxes
MIN_CENTRE_GAP = 6  # pixels between box centres in x
SUPERSAMPLE = 4
SPLITS = {"train": 1, "heldout": 2, "demo": 3, "val": 4}
# Segmentation uses a fixed codebook (seg_vae.py): in this world a mask is fully determined by the shape and
# its box, so each shape has one fixed sequence of 16 <segNNN> codes (disjoint between shapes), and the
# demo's mask decoder is trained to draw that shape from it.
_codes = np.random.default_rng(20251).permutation(128)
SEG_CODES = {shape: [int(c) for c in _codes[16 * i : 16 * (i + 1)]] for i, shape in enumerate(SHAPES)}


@dataclass
class Obj:
    shape: str
    colour: str
    box: list[int]  # x1, y1, x2, y2 (x2, y2 exclusive)
    mask: np.ndarray  # bool [SIZE, SIZE]

    @property
    def label(self) -> str:
        return self.shape


@dataclass
class Sample:
    image: Image.Image
    objects: list[Obj]  # canonical order: left to right

    @property
    def caption(self) -> str:
        return caption_of(self.objects)

    def detect_target(self, classes) -> str:
        return detect_target(self.objects, classes, self.image.width, self.image.height)

    def segment_target(self, classes) -> str:
        return segment_target(self.objects, classes, self.image.width, self.image.height)


def rng_for(split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([SPLITS[split], index, 20250])


def loc_token(coord: float, extent: int) -> str:
    v = int(np.clip(round(coord / extent * 1024), 0, 1023))
    return f"<loc{v:04d}>"


def caption_of(objects: list[Obj]) -> str:
    parts = [f"{'an' if o.colour[0] in 'aeiou' else 'a'} {o.colour} {o.shape}" for o in objects]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def detect_target(objects: list[Obj], classes, width: int, height: int, masks: bool = False) -> str:
    """The objects of `classes`, left to right, as "<loc×4> label" joined by " ; "; with masks=True, the shape's
    16 mask codes between the box and the label, as a segment target (SPEC §8.1)."""
    want = set(classes)
    out = []
    for o in objects:
        if o.shape not in want:
            continue
        x1, y1, x2, y2 = o.box
        locs = loc_token(y1, height) + loc_token(x1, width) + loc_token(y2, height) + loc_token(x2, width)
        codes = "".join(f"<seg{c:03d}>" for c in SEG_CODES[o.shape]) if masks else ""
        out.append(f"{locs}{codes} {o.label}")
    return " ; ".join(out)


def segment_target(objects: list[Obj], classes, width: int, height: int) -> str:
    return detect_target(objects, classes, width, height, masks=True)


def box_mask(shape: str, size: int = 64) -> np.ndarray:
    """The shape's coverage (0..1) in its own tight box, resampled to size×size: what a mask code sequence
    decodes to. Drawn large and then cropped to the mask's bounds, as a box is the tight bounds of the mask."""
    big = 16 * size
    alpha = _mask(shape, 0, 0, big, big + 2)
    ys, xs = np.nonzero(alpha >= 0.5)
    crop = alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    img = Image.fromarray((crop * 255).astype(np.uint8), "L").resize((size, size), Image.BOX)
    return np.asarray(img, dtype=np.float32) / 255.0


def rle(mask: np.ndarray) -> list[int]:
    """Run lengths of a binary mask in row-major order, starting with a run of zeros (possibly empty)."""
    flat = mask.reshape(-1).astype(np.uint8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0] + runs


def _tinted(rng, lo, hi, tint=18):
    g = rng.uniform(lo, hi)
    return np.clip(g + rng.uniform(-tint, tint, 3), 0, 255)


def _background(rng, size: int) -> np.ndarray:
    kind = rng.choice(["plain", "gradient", "noise"], p=[0.35, 0.35, 0.30])
    if rng.random() < 0.8:
        lo, hi = 120, 250  # light
    else:
        lo, hi = 50, 110  # dark
    a = _tinted(rng, lo, hi)
    if kind == "plain":
        bg = np.broadcast_to(a, (size, size, 3)).astype(np.float32)
    elif kind == "gradient":
        b = _tinted(rng, lo, hi)
        theta = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
        t = (np.cos(theta) * xx + np.sin(theta) * yy)
        t = (t - t.min()) / (t.max() - t.min() + 1e-9)
        bg = a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]
    else:
        bg = np.broadcast_to(a, (size, size, 3)).astype(np.float32)
        bg = bg + rng.normal(0, rng.uniform(6, 16), (size, size, 1))
    return bg.astype(np.float32)


def _shape_polygon(shape: str, x: float, y: float, s: float, k: int):
    """The shape's outline in supersampled pixels; (x, y) is the top-left corner, s the side."""
    x, y, s = x * k, y * k, s * k
    if shape == "circle":
        return ("ellipse", [x, y, x + s - 1, y + s - 1])
    if shape == "square":
        return ("polygon", [(x, y), (x + s, y), (x + s, y + s), (x, y + s)])
    h = s * 0.87  # equilateral-ish, pointing up, centred in the s×s cell
    top = y + (s - h) / 2
    return ("polygon", [(x + s / 2, top), (x + s, top + h), (x, top + h)])


def _mask(shape: str, x: float, y: float, s: float, size: int) -> np.ndarray:
    k = SUPERSAMPLE
    canvas = Image.new("L", (size * k, size * k), 0)
    draw = ImageDraw.Draw(canvas)
    kind, geom = _shape_polygon(shape, x, y, s, k)
    if kind == "ellipse":
        draw.ellipse(geom, fill=255)
    else:
        draw.polygon(geom, fill=255)
    alpha = np.asarray(canvas.resize((size, size), Image.BOX), dtype=np.float32) / 255.0
    return alpha


def _place(rng, n: int, size: int):
    for _attempt in range(200):
        placed = []
        scale = 1.0 if _attempt < 100 else 0.75
        for _ in range(n):
            ok = False
            for _try in range(60):
                s = rng.uniform(MIN_SIDE, MAX_SIDE * scale) * size
                x = rng.uniform(1, size - 1 - s)
                y = rng.uniform(1, size - 1 - s)
                box = (x, y, x + s, y + s)
                cx = x + s / 2
                clash = False
                for (bx1, by1, bx2, by2) in placed:
                    if not (box[2] + GAP <= bx1 or bx2 + GAP <= box[0] or box[3] + GAP <= by1 or by2 + GAP <= box[1]):
                        clash = True
                        break
                    if abs((bx1 + bx2) / 2 - cx) < MIN_CENTRE_GAP + 1:
                        clash = True
                        break
                if not clash:
                    placed.append(box)
                    ok = True
                    break
            if not ok:
                break
        if len(placed) == n:
            return placed
    raise RuntimeError("could not place shapes")


def generate(rng: np.random.Generator, size: int = SIZE, count: int | None = None) -> Sample:
    n = int(rng.integers(1, 5)) if count is None else count
    img = _background(rng, size)
    objects = []
    for (x, y, x2, _y2) in _place(rng, n, size):
        s = x2 - x
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        rgb = np.clip(np.array(COLOURS[colour], np.float32) + rng.uniform(-18, 18, 3), 0, 255)
        alpha = _mask(shape, x, y, s, size)
        img = img * (1 - alpha[..., None]) + rgb[None, None] * alpha[..., None]
        mask = alpha >= 0.5
        ys, xs = np.nonzero(mask)
        box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        objects.append(Obj(shape, colour, box, mask))
    if rng.random() < 0.25:  # sensor-like noise over everything
        img = img + rng.normal(0, rng.uniform(3, 8), img.shape)
    image = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")
    objects.sort(key=lambda o: (o.box[0] + o.box[2]) / 2)
    return Sample(image, objects)


def sample(split: str, index: int, size: int = SIZE) -> Sample:
    return generate(rng_for(split, index), size)


def ground_truth(s: Sample, name: str) -> dict:
    return {
        "file": name,
        "width": s.image.width,
        "height": s.image.height,
        "caption": s.caption,
        "detect_prompt": "detect " + " ; ".join(SHAPES),
        "detect_target": s.detect_target(SHAPES),
        "objects": [
            {
                "label": o.label,
                "colour": o.colour,
                "box": o.box,
                "area": int(o.mask.sum()),
                "mask_rle": rle(o.mask),
            }
            for o in s.objects
        ],
    }


def write_split(out: Path, split: str, count: int, size: int = SIZE) -> None:
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(count):
        s = sample(split, i, size)
        name = f"{i:03d}.png"
        s.image.save(out / name, optimize=True)
        items.append(ground_truth(s, name))
    meta = {
        "generator": "models/demo/shapes.py",
        "split": split,
        "size": size,
        "loc": "clip(round(coord / size * 1024), 0, 1023); boxes are [x1, y1, x2, y2] pixel edges, x2/y2 exclusive",
        "mask_rle": "run lengths of the binary mask (coverage >= 0.5), row-major, starting with zeros",
        "images": items,
    }
    (out / "ground-truth.json").write_text(json.dumps(meta, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--split", default="heldout", choices=list(SPLITS))
    ap.add_argument("--size", type=int, default=SIZE, help="image side; the model sees SIZE (larger images are resized)")
    a = ap.parse_args()
    write_split(a.out, a.split, a.count, a.size)


if __name__ == "__main__":
    main()
