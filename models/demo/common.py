"""What train.py and evaluate.py share: the tokenizer, the prompt layout of SPEC §2.1, metrics."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
TOKENIZER = ROOT.parent / "fixtures" / "tokenizer"
IMAGE_ID = json.loads((TOKENIZER / "added_tokens.json").read_text())["<image>"]  # 5152
PAD, EOS, BOS = 0, 1, 2
LOC0 = 4000  # <loc0000>
SEG0 = 5024  # <seg000>
VOCAB = (IMAGE_ID + 1 + 63) // 64 * 64  # 5184: padded to a multiple of 64 as transformers does (SPEC §3)


def tokenizer():
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(TOKENIZER / "tokenizer.model"))
    assert sp.piece_to_id("<loc0000>") == LOC0 and sp.piece_to_id("<seg000>") == SEG0 and sp.vocab_size() == IMAGE_ID
    return sp


def prefix_ids(sp, prompt: str, image_tokens: int) -> list[int]:
    """[<image>]×N <bos> prompt "\n": the prompt tokenized together with its newline, as HF and pali do."""
    return [IMAGE_ID] * image_tokens + [BOS] + sp.encode(prompt + "\n")


def suffix_ids(sp, suffix: str) -> list[int]:
    return (sp.encode(suffix) if suffix else []) + [EOS]


def pixels(image) -> np.ndarray:
    """(x/255 − 0.5)/0.5, CHW float32: SiglipImageProcessor's normalization. Images are drawn at the model's
    resolution, so there is no resize."""
    a = np.asarray(image.convert("RGB"), dtype=np.float32)
    return ((a / 255.0 - 0.5) / 0.5).transpose(2, 0, 1).copy()


# ---- output decoding (SPEC §7), the same reading as @pali/tasks' parseDetections for well-formed output ----

_OBJ_RE = re.compile(r"<loc(\d{4})><loc(\d{4})><loc(\d{4})><loc(\d{4})>\s*([^;<>]*)")


def parse_detections(text: str, width: int, height: int) -> list[dict]:
    out = []
    for m in _OBJ_RE.finditer(text):
        y1, x1, y2, x2 = (int(m[i]) for i in range(1, 5))
        if max(y1, x1, y2, x2) > 1023 or y2 <= y1 or x2 <= x1:
            continue
        out.append(
            {
                "label": m[5].strip(),
                "box": [x1 / 1024 * width, y1 / 1024 * height, x2 / 1024 * width, y2 / 1024 * height],
            }
        )
    return out


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_image(gt: list[dict], pred: list[dict]) -> tuple[list[float], int]:
    """Per class, the one-to-one matching of predictions to ground-truth boxes with the largest total IoU
    (exhaustive: at most 4 objects). Returns each ground-truth object's IoU with its match (0 when it has none)
    and the number of predictions left unmatched (false positives, including unknown labels)."""
    ious: list[float] = []
    extra = 0
    labels = {o["label"] for o in gt} | {p["label"] for p in pred}
    for label in sorted(labels):
        g = [o["box"] for o in gt if o["label"] == label]
        p = [q["box"] for q in pred if q["label"] == label]
        best, best_pairs = -1.0, []
        if len(p) >= len(g):
            for perm in itertools.permutations(range(len(p)), len(g)):
                pairs = [iou(g[i], p[j]) for i, j in enumerate(perm)]
                if sum(pairs) > best:
                    best, best_pairs = sum(pairs), pairs
        else:
            for perm in itertools.permutations(range(len(g)), len(p)):
                pairs = [0.0] * len(g)
                for j, i in enumerate(perm):
                    pairs[i] = iou(g[i], p[j])
                if sum(pairs) > best:
                    best, best_pairs = sum(pairs), pairs
        ious.extend(best_pairs if g else [])
        extra += max(0, len(p) - len(g))
    return ious, extra
