"""Greedy evaluation of the demo checkpoint with Hugging Face transformers on held-out shapes images.

    .venv-ref/bin/python models/demo/evaluate.py [CHECKPOINT] [--count 100] [--split heldout] [--json OUT]

For each image: "caption en" (exact match against the canonical caption) and
"detect circle ; square ; triangle" (boxes decoded as @pali/tasks does: loc / 1024 × size).

Detection mean IoU: for each class in each image, predictions are matched one-to-one to ground-truth boxes so
that the total IoU is largest; each ground-truth object scores the IoU with its match, 0 when it has none; the
mean is over all ground-truth objects of all images. Unmatched predictions are counted as false positives and
reported beside it (they do not lower the mean IoU).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import shapes  # noqa: E402
from transformers import PaliGemmaForConditionalGeneration  # noqa: E402

CAPTION = "caption en"
DETECT = "detect " + " ; ".join(shapes.SHAPES)


@torch.no_grad()
def generate(model, sp, images, prompt: str, max_new_tokens: int, batch: int = 25) -> list[str]:
    n = (shapes.SIZE // 14) ** 2
    prefix = common.prefix_ids(sp, prompt, n)
    texts = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        b = len(chunk)
        ids = torch.tensor([prefix] * b)
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            token_type_ids=torch.zeros_like(ids),
            pixel_values=torch.tensor(np.stack([common.pixels(im) for im in chunk])),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=common.EOS,
            pad_token_id=common.PAD,
        )
        for row in out[:, len(prefix) :].tolist():
            if common.EOS in row:
                row = row[: row.index(common.EOS)]
            texts.append(sp.decode(row))
    return texts


def score(samples, captions: list[str], detections: list[str]) -> dict:
    exact = [c == s.caption for c, s in zip(captions, samples)]
    ious, extra, per_image = [], 0, []
    for text, s in zip(detections, samples):
        gt = [{"label": o.label, "box": o.box} for o in s.objects]
        pred = common.parse_detections(text, s.image.width, s.image.height)
        i, e = common.match_image(gt, pred)
        ious.extend(i)
        extra += e
        per_image.append(float(np.mean(i)))
    return {
        "images": len(samples),
        "objects": len(ious),
        "caption_exact": float(np.mean(exact)),
        "detection_miou": float(np.mean(ious)),
        "objects_iou_ge_0.5": float(np.mean([v >= 0.5 for v in ious])),
        "false_positives": extra,
        "detect_target_exact": float(np.mean([d == s.detect_target(shapes.SHAPES) for d, s in zip(detections, samples)])),
    }


def evaluate(model, count: int = 100, split: str = "heldout", verbose: bool = False) -> dict:
    sp = common.tokenizer()
    samples = [shapes.sample(split, i) for i in range(count)]
    images = [s.image for s in samples]
    t = time.time()
    captions = generate(model, sp, images, CAPTION, 64)
    detections = generate(model, sp, images, DETECT, 64)
    result = score(samples, captions, detections)
    result["seconds"] = round(time.time() - t, 1)
    if verbose:
        for i, (s, c, d) in enumerate(zip(samples, captions, detections)):
            if c != s.caption or d != s.detect_target(shapes.SHAPES):
                print(f"{i:03d} caption {c!r} want {s.caption!r}\n    detect {d!r}\n      want {s.detect_target(shapes.SHAPES)!r}")
    result["outputs"] = [{"caption": c, "detect": d} for c, d in zip(captions, detections)]
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", type=Path, nargs="?", default=common.ROOT / "checkpoint")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = PaliGemmaForConditionalGeneration.from_pretrained(a.checkpoint, attn_implementation="eager").eval()
    result = evaluate(model, a.count, a.split, a.verbose)
    print(json.dumps({k: v for k, v in result.items() if k != "outputs"}, indent=1))
    if a.json:
        a.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
