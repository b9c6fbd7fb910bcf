"""Trains the demo's segmentation mask decoder: big_vision's VQ-VAE decoder (SPEC §8.3), small, with a fixed codebook.

    .venv-ref/bin/python models/demo/seg_vae.py [OUT.npz]      # default models/demo/checkpoint/seg-vae.npz

In the shapes world a mask is fully determined by the shape and its box, so each shape has one fixed sequence
of 16 codes (shapes.SEG_CODES) and no encoder is needed: this trains the codebook and the decoder so that each
sequence decodes to its shape's mask in a 64×64 box (target 2·coverage − 1, the decoder's nominal [−1, 1]).
A few codes of each training sequence are replaced at random, so that a sequence the language model gets
slightly wrong still draws its shape. The result is saved as an npz with the names and PyTorch layouts of
`vae-oid.npz` (SPEC §8.2), which `pali convert --seg-vae` reads; only the widths are smaller.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import shapes  # noqa: E402


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 1))

    def forward(self, x):
        return x + self.net(x)


def decoder(embedding: int, channels: int) -> nn.Sequential:
    """Indices match vae-oid.npz: decoder.0 conv, .2/.3 residual blocks, .4/.6/.8/.10 transposed convs, .12 conv."""
    layers: list[nn.Module] = [nn.Conv2d(embedding, channels, 1), nn.ReLU(), ResBlock(channels), ResBlock(channels)]
    c = channels
    for j in range(4):
        out = channels >> j
        layers += [nn.ConvTranspose2d(c, out, 4, stride=2, padding=1), nn.ReLU()]
        c = out
    layers.append(nn.Conv2d(c, 1, 1))
    return nn.Sequential(*layers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, nargs="?", default=common.ROOT / "checkpoint" / "seg-vae.npz")
    ap.add_argument("--embedding", type=int, default=32)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    codebook = nn.Parameter(torch.randn(128, a.embedding) * 0.5)
    dec = decoder(a.embedding, a.channels)
    targets = torch.tensor(np.stack([2 * shapes.box_mask(s) - 1 for s in shapes.SHAPES]))[:, None]
    codes = torch.tensor([shapes.SEG_CODES[s] for s in shapes.SHAPES])
    opt = torch.optim.Adam([codebook, *dec.parameters()], lr=3e-3)

    def decode(c: torch.Tensor) -> torch.Tensor:  # [B, 16] → [B, 1, 64, 64], codes row-major on a 4×4 grid
        z = codebook[c].reshape(-1, 4, 4, a.embedding).permute(0, 3, 1, 2)
        return dec(z)

    for step in range(a.steps):
        k = 48
        cls = torch.tensor(rng.integers(0, len(shapes.SHAPES), k))
        c = codes[cls].clone()
        noisy = torch.tensor(rng.random((k, 16)) < rng.uniform(0, 0.2, (k, 1)))
        c[noisy] = torch.tensor(rng.integers(0, 128, int(noisy.sum())))
        loss = nn.functional.mse_loss(decode(c), targets[cls])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1} loss {loss.item():.5f}", flush=True)

    with torch.no_grad():
        m = decode(codes)
        iou = [((m[i] > 0) & (targets[i] > 0)).sum().item() / ((m[i] > 0) | (targets[i] > 0)).sum().item() for i in range(3)]
    print("mask IoU of the exact sequences:", dict(zip(shapes.SHAPES, [round(v, 4) for v in iou])), flush=True)

    arrays = {"_vq_vae._embedding": codebook.detach().numpy()}
    arrays.update({f"decoder.{k}": v.detach().numpy() for k, v in dec.state_dict().items()})
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp.npz")
    np.savez(tmp, **{k: v.astype(np.float32) for k, v in arrays.items()})
    tmp.replace(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
