"""Trains the pali demo model: a tiny PaliGemma 1 (SigLIP + Gemma) from scratch on the shapes world.

Run from the repository root, in the reference venv (see models/demo/README.md):

    .venv-ref/bin/python models/demo/train.py            # writes models/demo/checkpoint/

Teacher forcing on the layout of SPEC §2.1: [<image>×N][<bos>][prompt + "\n"] with token_type_ids 0 (one
bidirectional block), then suffix + <eos> with token_type_ids 1; the loss is on the suffix only. Every training
image is used in two rows that share one pass of the image encoder: the first "caption en" (--caption-share)
or a detect row, the second "detect …" (all three classes, or a random subset in a random order, so that absent
classes are asked for too) or, for --segment-share of the images, "segment <class>" (box + the class's fixed 16
mask codes, see seg_vae.py).

Several things make this small run learn boxes quickly (see models/demo/README.md); none changes the architecture:
- the <locNNNN> rows of the (tied) embedding start as sine/cosine features of NNNN/1024, so that
  neighbouring bins start with neighbouring embeddings and output logits; the SigLIP position embedding
  starts as 2-D sine/cosine features of the patch position;
- the loss on a location token is the cross-entropy against a Gaussian over neighbouring bins (σ in bins),
  which rewards near misses; every other token has the usual one-hot target;
- the image encoder first trains alone on per-patch targets (AuxHeads), and keeps that loss afterwards;
- a pointer loss teaches a middle decoder layer which image tokens each output token is about;
- the location tokens the decoder reads back are jittered (--loc-noise), as its own guesses will be.

The run stops after --steps or --budget minutes, whichever comes first (the cosine schedule follows whichever
is nearer its end). With --budget 0 the run is fully determined by the seed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import resource
import shutil
import sys
import time
from pathlib import Path

# On a shared machine, OpenMP threads that spin while waiting for a busy core slow every step down several
# times; and glibc returning the big activation buffers to the kernel after every step costs page faults.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
try:
    _libc = ctypes.CDLL("libc.so.6")
    _libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    _libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
except OSError:
    pass

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import shapes  # noqa: E402
from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration  # noqa: E402

DETECT_ALL = "detect " + " ; ".join(shapes.SHAPES)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=common.ROOT / "checkpoint")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--budget", type=float, default=29.0, help="minutes of training (0: no limit)")
    ap.add_argument("--images", type=int, default=16, help="images per step (two rows each)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--sigma", type=float, default=6.0, help="σ of the location target, in bins")
    ap.add_argument("--vision-hidden", type=int, default=128)
    ap.add_argument("--vision-layers", type=int, default=4)
    ap.add_argument("--text-hidden", type=int, default=128)
    ap.add_argument("--text-layers", type=int, default=3)
    ap.add_argument("--text-ffn", type=int, default=512)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--aux", type=float, default=1.0, help="weight of the per-patch auxiliary loss (0: off)")
    ap.add_argument("--pointer", type=float, default=1.0,
                    help="weight of the auxiliary pointer loss on the decoder (0: off)")
    ap.add_argument("--vision-steps", type=int, default=1500, help="steps of image-encoder-only training first")
    ap.add_argument("--vision-images", type=int, default=48)
    ap.add_argument("--vision-budget", type=float, default=8.0, help="minutes for phase 1 (0: no limit)")
    ap.add_argument("--vision-lr-scale", type=float, default=0.5, help="learning-rate factor of the image encoder after phase 1")
    ap.add_argument("--loc-noise", type=float, default=24.0,
                    help="σ in bins of the jitter on half of the location tokens the decoder reads (0: off)")
    ap.add_argument("--caption-share", type=float, default=0.35, help="share of rows that are captions")
    ap.add_argument("--segment-share", type=float, default=0.2,
                    help="share of images whose second row is a segment row instead of a detect row")
    ap.add_argument("--curriculum", type=float, default=0.3,
                    help="fraction of training over which images go from mostly 1–2 shapes to 1–4 uniformly")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", type=int, default=1, help="bf16 autocast for matmuls (weights stay float32)")
    return ap.parse_args(argv)


def make_config(a) -> PaliGemmaConfig:
    text = dict(
        model_type="gemma",
        vocab_size=common.VOCAB,
        hidden_size=a.text_hidden,
        intermediate_size=a.text_ffn,
        num_hidden_layers=a.text_layers,
        num_attention_heads=a.heads,
        num_key_value_heads=1,
        head_dim=a.text_hidden // a.heads,
        max_position_embeddings=2048,
    )
    vision = dict(
        model_type="siglip_vision_model",
        hidden_size=a.vision_hidden,
        intermediate_size=4 * a.vision_hidden,
        num_hidden_layers=a.vision_layers,
        num_attention_heads=a.heads,
        patch_size=14,
        image_size=shapes.SIZE,
        projection_dim=a.text_hidden,
        vision_use_head=False,
    )
    config = PaliGemmaConfig(
        text_config=text,
        vision_config=vision,
        image_token_index=common.IMAGE_ID,
        vocab_size=common.VOCAB,
        projection_dim=a.text_hidden,
        hidden_size=a.text_hidden,
    )
    config._name_or_path = "pali-demo"
    return config


def sincos(values: np.ndarray, dim: int, max_freq: float) -> np.ndarray:
    """[len(values), dim] features sin/cos(2π f v) for dim/2 frequencies f from 0.5 to max_freq (v in [0, 1))."""
    freqs = np.geomspace(0.5, max_freq, dim // 2)
    ang = 2 * np.pi * values[:, None] * freqs[None, :]
    return np.concatenate([np.sin(ang), np.cos(ang)], axis=1)


def init_weights(model: PaliGemmaForConditionalGeneration) -> None:
    """Structured starting points for the location tokens and the SigLIP position embedding (see the docstring)."""
    emb = model.model.language_model.embed_tokens.weight
    d = emb.shape[1]
    vis = model.model.vision_tower.embeddings.position_embedding.weight
    n, vd = vis.shape
    g = int(math.isqrt(n))
    with torch.no_grad():
        std = emb.std().item()
        u = (np.arange(1024) + 0.5) / 1024
        c = 2 * u - 1
        # logit(k) = h·e_k: with e_k ⊃ [c_k, -c_k²/2], a hidden [γ·t, γ] peaks exactly at c_k = t, so the box
        # coordinate is read out linearly; a shared dimension tells location tokens from text
        quad = np.stack([c, -0.5 * c * c, np.ones_like(c)], axis=1) * 0.1
        waves = sincos(u, (d // 2 - 3) // 2 * 2, 16.0) * std
        free = np.random.default_rng(5).normal(0, 0.25 * std, (1024, d - 3 - waves.shape[1]))
        emb[common.LOC0 : common.LOC0 + 1024] = torch.tensor(np.concatenate([quad, waves, free], axis=1), dtype=torch.float32)
        yy, xx = np.meshgrid((np.arange(g) + 0.5) / g, (np.arange(g) + 0.5) / g, indexing="ij")
        pe = np.concatenate([sincos(yy.reshape(-1), vd // 2, g / 2), sincos(xx.reshape(-1), vd // 2, g / 2)], axis=1)
        vis.copy_(torch.tensor(pe, dtype=torch.float32) * 0.3)


class AuxHeads(torch.nn.Module):
    """Training-only heads on the SigLIP output (not saved): for every patch, the shape and colour of the object
    that covers most of it (or background), and that object's box. They give the image encoder a dense signal
    from the first step, long before the decoder has learnt to look at the image."""

    def __init__(self, width: int):
        super().__init__()
        self.shape = torch.nn.Linear(width, len(shapes.SHAPES) + 1)
        self.colour = torch.nn.Linear(width, len(shapes.COLOURS))
        self.box = torch.nn.Linear(width, 4)


def aux_targets(samples, patch: int = 14) -> dict:
    g = shapes.SIZE // patch
    b = len(samples)
    shape = np.zeros((b, g * g), np.int64)
    colour = np.full((b, g * g), -100, np.int64)
    box = np.zeros((b, g * g, 4), np.float32)
    for i, s in enumerate(samples):
        if not s.objects:
            continue
        cover = np.stack([o.mask.reshape(g, patch, g, patch).mean(axis=(1, 3)).reshape(-1) for o in s.objects])
        best = cover.argmax(0)
        for p in np.nonzero(cover.max(0) >= 0.25)[0]:
            o = s.objects[best[p]]
            shape[i, p] = 1 + shapes.SHAPES.index(o.shape)
            colour[i, p] = list(shapes.COLOURS).index(o.colour)
            box[i, p] = np.array(o.box, np.float32) / shapes.SIZE
    obj_shape = np.full((b, 4), -100, np.int64)
    for i, s in enumerate(samples):
        obj_shape[i, : len(s.objects)] = [shapes.SHAPES.index(o.shape) for o in s.objects]
    return {
        "shape": torch.tensor(shape),
        "colour": torch.tensor(colour),
        "box": torch.tensor(box),
        "coverage": torch.tensor(np.stack([coverage(s, patch) for s in samples])),
        "object_shape": torch.tensor(obj_shape),
    }


def aux_loss(heads: AuxHeads, hidden: torch.Tensor, t: dict) -> torch.Tensor:
    h = hidden.float()
    loss = torch.nn.functional.cross_entropy(heads.shape(h).flatten(0, 1), t["shape"].flatten())
    obj = t["colour"] >= 0
    if bool(obj.any()):
        loss = loss + torch.nn.functional.cross_entropy(heads.colour(h)[obj], t["colour"][obj])
        loss = loss + 10 * torch.nn.functional.smooth_l1_loss(heads.box(h)[obj], t["box"][obj], beta=0.02)
    # the shape of each object from its patches pooled by coverage, as the decoder will read it: learnt much
    # faster than from single patches, most of which see only the inside of the object
    pooled = torch.einsum("bjp,bpd->bjd", t["coverage"], h)
    logits = heads.shape(pooled)[..., 1:]
    loss = loss + torch.nn.functional.cross_entropy(logits.flatten(0, 1), t["object_shape"].flatten(), ignore_index=-100)
    return loss


def object_spans(s, prompt_classes, task: str = "detect") -> tuple[list, list]:
    """(caption spans, detect/segment spans): per object its [start, end) in the caption / target text."""
    target = shapes.segment_target if task == "segment" else shapes.detect_target
    cap, det = [], []
    text = shapes.caption_of(s.objects)
    pos = 0
    for i, o in enumerate(s.objects):
        phrase = shapes.caption_of([o])
        start = text.index(phrase, pos)
        cap.append((start, start + len(phrase), i))
        pos = start + len(phrase)
    text = target(s.objects, prompt_classes, s.image.width, s.image.height)
    pos = 0
    for i, o in enumerate(s.objects):
        if o.shape not in prompt_classes:
            continue
        part = target([o], prompt_classes, s.image.width, s.image.height)
        start = text.index(part, pos)
        det.append((start, start + len(part), i))
        pos = start + len(part)
    return cap, det


def token_objects(sp, text: str, spans) -> list[int]:
    """For each token of sp.encode(text): the object whose span holds the token's first non-space character."""
    out, pos = [], 0
    for piece in sp.encode(text, out_type=str):
        surface = piece.replace("\u2581", " ")
        first = pos + (len(surface) - len(surface.lstrip(" ")))
        obj = -1
        if first < pos + len(surface):
            for a, b, i in spans:
                if a <= first < b:
                    obj = i
        out.append(obj)
        pos += len(surface)
    assert pos == len(text), (text, pos)
    return out


def coverage(s, patch: int = 14) -> np.ndarray:
    """[4, N] per object: the share of its mask in each patch (rows of absent objects are 0)."""
    g = shapes.SIZE // patch
    out = np.zeros((4, g * g), np.float32)
    for i, o in enumerate(s.objects):
        c = o.mask.reshape(g, patch, g, patch).mean(axis=(1, 3)).reshape(-1)
        out[i] = c / c.sum()
    return out


class Batcher:
    """Rows for one step: two per image (caption or detect, then detect or segment; SPEC §2.1 layout, right-padded)."""

    def __init__(self, sp, image_tokens: int, seed: int, loc_noise: float = 0.0, caption_share: float = 0.5,
                 segment_share: float = 0.0):
        self.segment_share = segment_share
        self.loc_noise = loc_noise
        self.caption_share = caption_share
        self.sp = sp
        self.n = image_tokens
        self.rng = np.random.default_rng([seed, 7])
        self.cache: dict[str, list[int]] = {}

    def prefix(self, prompt: str) -> list[int]:
        if prompt not in self.cache:
            self.cache[prompt] = common.prefix_ids(self.sp, prompt, self.n)
        return self.cache[prompt]

    def detect_prompt(self) -> list[str]:
        if self.rng.random() < 0.6:
            return list(shapes.SHAPES)
        k = int(self.rng.integers(1, 4))
        return [str(c) for c in self.rng.permutation(shapes.SHAPES)[:k]]

    def rows(self, samples) -> dict:
        seqs, objs = [], []
        for s in samples:
            classes = self.detect_prompt()
            cap_spans, det_spans = object_spans(s, classes)
            first = ("caption en", s.caption, cap_spans)
            if self.rng.random() >= 2 * self.caption_share:  # a second detect row instead of the caption
                other = self.detect_prompt()
                first = ("detect " + " ; ".join(other), s.detect_target(other), object_spans(s, other)[1])
            second = ("detect " + " ; ".join(classes), s.detect_target(classes), det_spans)
            if self.rng.random() < self.segment_share:  # a segment row instead: one class, usually present
                present = [o.shape for o in s.objects]
                cls = present[int(self.rng.integers(len(present)))] if self.rng.random() < 0.85 else str(
                    self.rng.choice(shapes.SHAPES))
                second = ("segment " + cls, s.segment_target([cls]), object_spans(s, [cls], "segment")[1])
            for prompt, suffix, spans in (first, second):
                seqs.append((self.prefix(prompt), common.suffix_ids(self.sp, suffix)))
                objs.append((token_objects(self.sp, suffix, spans) if suffix else []) + [-1])
        batch = collate(seqs, [common.pixels(s.image) for s in samples])
        ptr = torch.full_like(batch["input_ids"], -1)
        for i, ((p, _), o) in enumerate(zip(seqs, objs)):
            ptr[i, len(p) : len(p) + len(o)] = torch.tensor(o)
        batch["pointer"] = ptr
        batch["coverage"] = torch.tensor(np.stack([coverage(s) for s in samples]))
        if self.loc_noise > 0:
            # The decoder reads the boxes it has already written; at inference they are its own, slightly-off
            # guesses. Jittering the location tokens it reads (never the targets) keeps it from relying on
            # exact values it will not see.
            ids, labels = batch["input_ids"], batch["labels"]
            loc = (labels >= common.LOC0) & (labels < common.LOC0 + 1024)
            jitter = torch.tensor(self.rng.normal(0, self.loc_noise, ids.shape)).round().long()
            jitter[torch.tensor(self.rng.random(ids.shape) < 0.5)] = 0
            ids[loc] = (ids[loc] + jitter[loc]).clamp(common.LOC0, common.LOC0 + 1023)
        return batch


def pointer_loss(hidden: torch.Tensor, batch: dict, image_tokens: int) -> torch.Tensor:
    """Each suffix position, from a middle decoder layer, points at the image tokens of the object that the token
    it predicts describes: cross-entropy of softmax(h_t · h_p / √D) over the image positions p against that
    object's share of each patch. Teaches the decoder where to look, which the next-token loss alone learns slowly."""
    h = hidden.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
    rows_per_image = batch["input_ids"].shape[0] // batch["pixel_values"].shape[0]
    target_obj = batch["pointer"][:, 1:]
    sel = target_obj >= 0
    if not bool(sel.any()):
        return h.sum() * 0
    scores = torch.einsum("bld,bpd->blp", h[:, :-1], h[:, :image_tokens]) / math.sqrt(h.shape[-1])
    row = torch.arange(h.shape[0])[:, None].expand_as(target_obj)[sel]
    q = batch["coverage"][row // rows_per_image, target_obj[sel]]
    return -(q * torch.log_softmax(scores[sel], dim=-1)).sum(-1).mean()


def collate(seqs, pixel_list) -> dict:
    length = max(len(p) + len(s) for p, s in seqs)
    b = len(seqs)
    ids = torch.full((b, length), common.PAD, dtype=torch.long)
    labels = torch.full((b, length), -100, dtype=torch.long)
    tt = torch.ones((b, length), dtype=torch.long)
    am = torch.zeros((b, length), dtype=torch.long)
    for i, (p, s) in enumerate(seqs):
        ids[i, : len(p) + len(s)] = torch.tensor(p + s)
        labels[i, len(p) : len(p) + len(s)] = torch.tensor(s)
        tt[i, : len(p)] = 0
        am[i, : len(p) + len(s)] = 1
    px = torch.tensor(np.stack(pixel_list))
    return {"input_ids": ids, "labels": labels, "token_type_ids": tt, "attention_mask": am, "pixel_values": px}


def loss_terms(model, batch, sigma: float, vision_out: list | None = None):
    """Per-token losses of the suffix tokens, and their targets. The logits are computed only where a target is."""
    rows_per_image = batch["input_ids"].shape[0] // batch["pixel_values"].shape[0]
    feats = model.model.get_image_features(batch["pixel_values"])
    if vision_out is not None:
        vision_out.append(feats.last_hidden_state)
    feats.pooler_output = feats.pooler_output.repeat_interleave(rows_per_image, 0)
    out = model.model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        token_type_ids=batch["token_type_ids"],
        mm_encoder_outputs={"image": feats},
        use_cache=False,
    )
    labels = batch["labels"][:, 1:]
    sel = labels != -100
    hs = out.last_hidden_state[:, :-1][sel]
    tgt = labels[sel]
    logits = (hs @ model.lm_head.weight.T).float()
    logp = torch.log_softmax(logits, dim=-1)
    loss = -logp.gather(1, tgt[:, None])[:, 0]
    is_loc = (tgt >= common.LOC0) & (tgt < common.LOC0 + 1024)
    if sigma > 0 and bool(is_loc.any()):
        k = int(math.ceil(3 * sigma))
        offs = torch.arange(-k, k + 1)
        bins = (tgt[is_loc] - common.LOC0)[:, None] + offs[None, :]
        valid = (bins >= 0) & (bins < 1024)
        w = torch.exp(-(offs.float() ** 2) / (2 * sigma**2))[None, :] * valid
        w = w / w.sum(1, keepdim=True)
        lp = logp[is_loc].gather(1, bins.clamp(0, 1023) + common.LOC0)
        loss = loss.clone()
        loss[is_loc] = -(w * lp).sum(1)
    return loss, tgt, logits


@torch.no_grad()
def validate(model, batch, sigma: float) -> dict:
    model.eval()
    loss, tgt, logits = loss_terms(model, batch, sigma)
    model.train()
    is_loc = (tgt >= common.LOC0) & (tgt < common.LOC0 + 1024)
    pred = logits.argmax(-1)
    loc_pred = logits[is_loc][:, common.LOC0 : common.LOC0 + 1024].argmax(-1)
    loc_err = (loc_pred - (tgt[is_loc] - common.LOC0)).abs().float()
    return {
        "loss": loss.mean().item(),
        "text_acc": (pred[~is_loc] == tgt[~is_loc]).float().mean().item(),
        "loc_err_bins": loc_err.mean().item(),
        "loc_within_1px": (loc_err <= 1024 / shapes.SIZE).float().mean().item(),
    }


def shape_count(rng, progress: float, a) -> int:
    t = min(1.0, progress / a.curriculum) if a.curriculum > 0 else 1.0
    w = (1 - t) * np.array([0.55, 0.3, 0.1, 0.05]) + t * np.full(4, 0.25)
    return int(rng.choice(4, p=w / w.sum())) + 1


def pretrain_vision(model, heads: AuxHeads, a, t0: float) -> list:
    """Phase 1: the image encoder alone, on the per-patch auxiliary targets (cheap: no decoder)."""
    params = list(model.model.vision_tower.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.98), weight_decay=a.wd)
    log = []
    start = time.time()
    for step in range(a.vision_steps):
        progress = max(step / a.vision_steps, (time.time() - start) / (a.vision_budget * 60) if a.vision_budget > 0 else 0)
        if progress >= 1:
            break
        lr = a.lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in opt.param_groups:
            group["lr"] = lr
        samples = [shapes.sample("train", 50_000_000 + step * a.vision_images + i) for i in range(a.vision_images)]
        px = torch.tensor(np.stack([common.pixels(s.image) for s in samples]))
        t = aux_targets(samples)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(a.bf16)):
            hidden = model.model.vision_tower(px).last_hidden_state
            loss = aux_loss(heads, hidden, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 25 == 0:
            with torch.no_grad():
                h = hidden.float()
                obj = t["colour"] >= 0
                m = {
                    "vision_step": step + 1,
                    "loss": round(loss.item(), 4),
                    "patch_shape_acc": round((heads.shape(h).argmax(-1) == t["shape"]).float().mean().item(), 4),
                    "object_shape_acc": round((heads.shape(h).argmax(-1)[obj] == t["shape"][obj]).float().mean().item(), 4),
                    "colour_acc": round((heads.colour(h).argmax(-1)[obj] == t["colour"][obj]).float().mean().item(), 4),
                    "box_err_px": round(((heads.box(h)[obj] - t["box"][obj]).abs().mean() * shapes.SIZE).item(), 2),
                    "seconds": round(time.time() - t0, 1),
                }
            log.append(m)
            print("vision", json.dumps(m), flush=True)
    return log


def lr_at(progress: float, a, step: int) -> float:
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    return a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def save(model, out: Path, meta: dict) -> None:
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True)
    shutil.copy(common.TOKENIZER / "tokenizer.model", out / "tokenizer.model")
    shutil.copy(common.TOKENIZER / "added_tokens.json", out / "added_tokens.json")
    (out / "training.json").write_text(json.dumps(meta, indent=1) + "\n")


def main(argv=None) -> None:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)  # tiny gradients otherwise slow CPU steps down several times
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    config = make_config(a)
    model = PaliGemmaForConditionalGeneration(config)
    init_weights(model)
    model.config._attn_implementation = "sdpa"
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params / 1e6:.2f}M", flush=True)

    sp = common.tokenizer()
    image_tokens = (shapes.SIZE // 14) ** 2
    batcher = Batcher(sp, image_tokens, a.seed, a.loc_noise, a.caption_share, a.segment_share)
    val_batcher = Batcher(sp, image_tokens, a.seed + 1)
    val = val_batcher.rows([shapes.sample("val", i) for i in range(48)])

    heads = AuxHeads(a.vision_hidden)
    named = list(model.named_parameters()) + [("aux." + n, p) for n, p in heads.named_parameters()]

    def group(vision: bool, decay: bool) -> dict:
        params = [
            p
            for n, p in named
            if (("vision_tower" in n or n.startswith("aux.")) == vision) and ((p.ndim >= 2 and "embed" not in n) == decay)
        ]
        return {"params": params, "weight_decay": a.wd if decay else 0.0, "scale": a.vision_lr_scale if vision else 1.0}

    opt = torch.optim.AdamW(
        [group(v, d) for v in (False, True) for d in (False, True)], lr=a.lr, betas=(0.9, 0.98), eps=1e-8
    )
    captured: list = []
    ptr_layer = model.model.language_model.layers[max(0, a.text_layers - 2)]
    ptr_layer.register_forward_hook(lambda _m, _i, out: captured.append(out[0] if isinstance(out, tuple) else out))
    budget_s = a.budget * 60
    t0 = time.time()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    vision_log = pretrain_vision(model, heads, a, t0) if a.vision_steps > 0 else []
    t1 = time.time()
    budget2 = budget_s - (t1 - t0)
    best = float("inf")
    best_step = 0
    history = []
    step = 0
    progress = 0.0
    smooth = None
    while step < a.steps:
        progress = max(step / a.steps, (time.time() - t1) / budget2 if budget_s > 0 else 0.0)
        if progress >= 1.0:
            break
        lr = lr_at(progress, a, step)
        for g in opt.param_groups:
            g["lr"] = lr * g["scale"]
        samples = [
            shapes.generate(shapes.rng_for("train", step * a.images + i), count=shape_count(batcher.rng, progress, a))
            for i in range(a.images)
        ]
        batch = batcher.rows(samples)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(a.bf16)):
            vision_out: list = []
            captured.clear()
            loss, _, _ = loss_terms(model, batch, a.sigma, vision_out)
            loss = loss.mean()
            if a.pointer > 0:
                ptr = pointer_loss(captured[0], batch, image_tokens)
                loss = loss + a.pointer * ptr
            if a.aux > 0:
                aux = aux_loss(heads, vision_out[0], aux_targets(samples))
                loss = loss + a.aux * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
        opt.step()
        step += 1
        smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
        if step % 10 == 0 or step <= 5:
            extra = f" aux {aux.item():.4f}" if a.aux > 0 else ""
            extra += f" ptr {ptr.item():.4f}" if a.pointer > 0 else ""
            print(f"step {step} loss {smooth:.4f}{extra} lr {lr:.2e} t {time.time() - t0:.0f}s", flush=True)
        if step % a.eval_every == 0 or step == a.steps:
            v = validate(model, val, a.sigma)
            v.update(step=step, seconds=round(time.time() - t0, 1))
            history.append(v)
            print("val", json.dumps(v), flush=True)
            if v["loss"] < best:
                best = v["loss"]
                best_step = step
                save(model, a.out, {})
    v = validate(model, val, a.sigma)
    v.update(step=step, seconds=round(time.time() - t0, 1))
    history.append(v)
    print("val", json.dumps(v), flush=True)
    if v["loss"] < best:
        best, best_step = v["loss"], step
        save(model, a.out, {})
    wall = time.time() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    meta = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "parameters": n_params,
        "steps": step,
        "images_seen": step * a.images,
        "best_step": best_step,
        "train_wall_seconds": round(wall, 1),
        "train_cpu_seconds": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
        "vision_history": vision_log,
        "history": history,
        "torch": torch.__version__,
    }
    (a.out / "training.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps({k: v for k, v in meta.items() if k != "history"}), flush=True)


if __name__ == "__main__":
    main()
