#!/bin/sh
# Rebuilds the committed demo model from nothing (about 35 minutes on 2 cores): trains it, converts it with
# pali, writes the held-out images and checks the accuracy that the end-to-end test asserts.
# Needs the reference venv (.venv-ref, see models/demo/README.md) and a built workspace (corepack pnpm build).
set -eu
cd "$(dirname "$0")/../.."
py=.venv-ref/bin/python
$py models/demo/train.py --out models/demo/checkpoint          # the HF checkpoint (not committed)
$py models/demo/seg_vae.py models/demo/checkpoint/seg-vae.npz   # the mask decoder, big_vision's layout
corepack pnpm pali convert models/demo/checkpoint -o models/demo --name pali-demo --type q8_0 --mmproj-type f16 --force
corepack pnpm pali convert --seg-vae models/demo/checkpoint/seg-vae.npz -o models/demo --force
$py models/demo/shapes.py models/demo/heldout --split heldout --count 100
$py models/demo/shapes.py models/demo/examples --split demo --count 6 --size 448
$py models/demo/evaluate.py models/demo/checkpoint --count 100 --json models/demo/checkpoint/eval-hf.json
node models/demo/eval-pali.mjs --min-miou 0.7 --min-caption 0.8 --json models/demo/checkpoint/eval-pali.json
