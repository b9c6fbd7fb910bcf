"""transformers on torch CPU on the same synthetic checkpoint: image encode, prefill, decode, an end-to-end
caption of N tokens, peak RSS. Usage: hf_bench.py CHECKPOINT_DIR bfloat16|float32 THREADS N. Prints JSON."""

import json
import resource
import sys
import time

import torch
from transformers import PaliGemmaForConditionalGeneration


def main() -> None:
    path, dtype_name, threads, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    t0 = time.perf_counter()
    model = PaliGemmaForConditionalGeneration.from_pretrained(path, torch_dtype=dtype, attn_implementation="sdpa").eval()
    load_s = time.perf_counter() - t0
    cfg = model.config
    size = cfg.vision_config.image_size
    n_img = (size // cfg.vision_config.patch_size) ** 2
    pixels = torch.rand(1, 3, size, size, dtype=dtype) * 2 - 1
    prompt = [2, 1000, 1001, 1002, 108]  # <bos>, three words, "\n"
    ids = torch.tensor([[cfg.image_token_index] * n_img + prompt])
    tti = torch.zeros_like(ids)
    with torch.inference_mode():
        t = time.perf_counter()
        model.get_image_features(pixels)
        encode_s = time.perf_counter() - t
        t = time.perf_counter()
        out = model(input_ids=ids, pixel_values=pixels, token_type_ids=tti, use_cache=True)
        prefill_s = time.perf_counter() - t
        past = out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        t = time.perf_counter()
        for i in range(n - 1):
            out = model(input_ids=token, past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
        decode_s = time.perf_counter() - t
        t = time.perf_counter()
        model.generate(input_ids=ids, pixel_values=pixels, token_type_ids=tti, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        e2e_s = time.perf_counter() - t
    print(json.dumps({
        "dtype": dtype_name,
        "loadS": load_s,
        "imageEncodeMs": encode_s * 1000,
        "prefillTokens": ids.shape[1],
        "prefillTokPerS": ids.shape[1] / prefill_s,
        "decodeTokPerS": (n - 1) / decode_s,
        "captionMs": e2e_s * 1000,
        "captionTokens": n,
        "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    main()
