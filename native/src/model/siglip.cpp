// SigLIP-So400m image encoder and PaliGemma's linear projector as one ggml graph, run through ggml's
// backend scheduler (so the same graph runs on CPU, CUDA, Metal or Vulkan). Several images per graph.
#include "siglip.h"

#include "../core/internal.h"
#include "cpu_gemm.h"
#include "graph_runner.h"

#include "ggml-alloc.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace pali {

namespace {

// Query rows whose attention scores are computed together (see build_graph).
constexpr int64_t ATTENTION_ROWS = 512;

ggml_tensor * layer_norm(ggml_context * ctx, ggml_tensor * x, ggml_tensor * w, ggml_tensor * b, float eps) {
    x = ggml_norm(ctx, x, eps);
    return ggml_add(ctx, ggml_mul(ctx, x, w), b);
}

// How the tower's graph is built on this device.
struct graph_options {
    bool flash = false;       // ggml's flash attention (use_flash_attention)
    bool cpu_gemm = false;    // pali's product where it is wanted (cpu_gemm.h)
};

// GELU with the tanh approximation (gelu_pytorch_tanh), composed from exact ops: ggml_gelu reads an
// fp16 table, which costs about 1e-3 relative error, too much for feature parity with transformers.
ggml_tensor * gelu_tanh(ggml_context * ctx, ggml_tensor * x) {
    const float c = 0.7978845608028654f; // sqrt(2 / pi)
    ggml_tensor * x3 = ggml_mul(ctx, x, ggml_sqr(ctx, x));
    ggml_tensor * inner = ggml_add(ctx, x, ggml_scale(ctx, x3, 0.044715f));
    ggml_tensor * t = ggml_tanh(ctx, ggml_scale(ctx, inner, c));
    return ggml_mul(ctx, x, ggml_scale_bias(ctx, t, 0.5f, 0.5f));
}

// W·x + b, plus scale·B·(A·x) for each adapter that adapts W; then, with gelu, gelu_tanh of that. pali's product
// adds the bias and applies the GELU as it stores each tile, where no adapter comes between; given a head width,
// it also pads each head with zero columns to a multiple of 16 (pad_heads), and the result is that much wider.
ggml_tensor * linear(ggml_context * ctx, ggml_tensor * x, ggml_tensor * w, ggml_tensor * b, const vision_lora_set & loras, const graph_options & opt,
                     bool gelu = false, int64_t head = 0) {
    // One 2-D product over every image's rows: the CPU's repacked and AMX kernels take 2-D activations.
    const int64_t n = x->ne[1], images = x->ne[2];
    x = ggml_reshape_2d(ctx, x, x->ne[0], n * images);
    const bool ours = opt.cpu_gemm && cpu_gemm_wanted(w);
    const bool adapted = std::any_of(loras.begin(), loras.end(), [&](const auto & l) { return l.first->by_weight.count(w) != 0; });
    if (ours && !adapted && cpu_gemm_fuses(w, b)) {
        ggml_tensor * y = cpu_gemm(ctx, w, x, b, gelu, head);
        return ggml_reshape_3d(ctx, y, y->ne[0], n, images);
    }
    ggml_tensor * y = ours ? cpu_gemm(ctx, w, x) : ggml_mul_mat(ctx, w, x);
    for (const auto & [lora, scale] : loras) {
        const auto it = lora->by_weight.find(w);
        if (it == lora->by_weight.end()) continue;
        ggml_tensor * delta = ggml_mul_mat(ctx, it->second.b, ggml_mul_mat(ctx, it->second.a, x));
        y = ggml_add(ctx, y, ggml_scale(ctx, delta, scale));
    }
    y = ggml_reshape_3d(ctx, ggml_add(ctx, y, b), w->ne[1], n, images);
    return gelu ? gelu_tanh(ctx, y) : y;
}

// Zero columns up to a multiple of 16: So400m's head width 72 keeps ggml's CPU backend off its tiled f32 kernels
// (for Q·Kᵀ, a third of the FLOPs at 896 px; and in flash attention, where AVX-512 needs rows of 16 floats).
// Zero columns change no dot product.
ggml_tensor * pad_heads(ggml_context * ctx, ggml_tensor * t) {
    const int64_t hd = t->ne[0];
    return hd % 16 == 0 ? t : ggml_pad(ctx, ggml_cont(ctx, t), (int) (16 - hd % 16), 0, 0, 0);
}

// Attention with the scores materialized, for at most ATTENTION_ROWS queries at a time: all of them at 896 px
// (4096 tokens) would be N² × heads floats, twice (products and softmax), 2 GiB a layer; row blocks of the
// same products keep ggml's tiled kernels, and the graph allocator reuses one block's buffers for the next.
// q, k: [hd, N, heads, B]; v: [N, hd, heads, B] (transposed) → [hd, heads, N, B], contiguous.
ggml_tensor * blocked_attention(ggml_context * ctx, ggml_tensor * q, ggml_tensor * k, ggml_tensor * v, float scale) {
    q = pad_heads(ctx, q);
    k = pad_heads(ctx, k);
    const int64_t n = q->ne[1];
    ggml_tensor * kqv = nullptr;                                // [hd, N_q, heads, B]
    for (int64_t q0 = 0; q0 < n; q0 += ATTENTION_ROWS) {
        const int64_t rows = std::min<int64_t>(ATTENTION_ROWS, n - q0);
        // A contiguous copy of the block (2.6 MB): ggml's tiled f32 kernels need a contiguous right operand.
        ggml_tensor * qb = rows == n ? q
                                     : ggml_cont(ctx, ggml_view_4d(ctx, q, q->ne[0], rows, q->ne[2], q->ne[3], q->nb[1], q->nb[2], q->nb[3],
                                                                   q0 * q->nb[1]));
        ggml_tensor * kq = ggml_mul_mat(ctx, k, qb);            // [N_k, rows, heads, B]
        kq = ggml_soft_max_ext(ctx, kq, nullptr, scale, 0.0f);  // full attention: no mask
        ggml_tensor * block = ggml_mul_mat(ctx, v, kq);         // [hd, rows, heads, B]
        kqv = kqv == nullptr ? block : ggml_concat(ctx, kqv, block, 1);
    }
    return ggml_cont(ctx, ggml_permute(ctx, kqv, 0, 2, 1, 3));
}

// ggml's flash attention with f32 K and V: an online softmax over tiles of keys, so the N×N scores never exist
// (at 896 px the blocked scores are the largest buffers of the graph); exact f32 products, only the order of
// the softmax sum differs. q, k, v: [hd, N, heads, B] → [hd, heads, N, B], contiguous.
// q, k, v may come padded already (linear with a head width); hd is the true head width.
ggml_tensor * flash_attention(ggml_context * ctx, ggml_tensor * q, ggml_tensor * k, ggml_tensor * v, float scale, int64_t hd) {
    ggml_tensor * out = ggml_flash_attn_ext(ctx, pad_heads(ctx, q), pad_heads(ctx, k), pad_heads(ctx, v), nullptr, scale, 0.0f, 0.0f);
    ggml_flash_attn_ext_set_prec(out, GGML_PREC_F32);
    if (out->ne[0] == hd) return out;                           // [hd_padded, heads, N, B]: drop the zero columns
    return ggml_cont(ctx, ggml_view_4d(ctx, out, hd, out->ne[1], out->ne[2], out->ne[3], out->nb[1], out->nb[2], out->nb[3], 0));
}

// pixels: [S, S, 3, B] (ggml order: width fastest) → image embeddings [D, N, B].
ggml_tensor * build_graph(ggml_context * ctx, const vision_model & m, ggml_tensor * pixels, int n_images, const vision_lora_set & loras,
                          const graph_options & opt) {
    const auto & hp = m.hparams;
    const int64_t h = hp.n_embd, n = hp.n_patches, heads = hp.n_head, hd = hp.n_embd / hp.n_head;

    // Patch embedding: a P×P convolution with stride P is one matrix product over non-overlapping patches.
    // (ggml_conv_2d would round the pixels to f16 in its im2col.)
    const int64_t p = hp.patch_size, s = hp.image_size, g = s / p;
    ggml_tensor * kernel = ggml_reshape_2d(ctx, m.patch_w, p * p * 3, h);
    ggml_tensor * x = nullptr;
    for (int b = 0; b < n_images; b++) {
        ggml_tensor * img = ggml_view_4d(ctx, pixels, p, g, p, g * 3, pixels->nb[0] * p, pixels->nb[1], pixels->nb[1] * p, b * pixels->nb[3]);
        img = ggml_cont(ctx, ggml_permute(ctx, img, 0, 2, 1, 3));            // [P(x), P(y), G(x), G(y)·3]
        img = ggml_reshape_4d(ctx, img, p * p, g, g, 3);
        img = ggml_cont(ctx, ggml_permute(ctx, img, 0, 2, 3, 1));            // [P·P, 3, G(x), G(y)]
        img = ggml_reshape_2d(ctx, img, p * p * 3, n);                       // one column per patch, raster order
        ggml_tensor * e = ggml_mul_mat(ctx, kernel, img);                    // [h, N]
        x = x == nullptr ? e : ggml_concat(ctx, x, e, 1);
    }
    x = ggml_reshape_3d(ctx, x, h, n, n_images);                             // [h, N, B]
    x = ggml_add(ctx, x, m.patch_b);
    x = ggml_add(ctx, x, m.pos);
    ggml_set_name(x, "embeddings");

    const float scale = 1.0f / std::sqrt((float) hd);
    for (int il = 0; il < hp.n_layer; il++) {
        const vision_layer & L = m.layers[il];
        ggml_tensor * cur = layer_norm(ctx, x, L.ln1_w, L.ln1_b, hp.eps);

        // flash attention reads rows of a multiple of 16: pali's product writes them so (else pad_heads copies)
        const int64_t head = opt.flash ? hd : 0;
        ggml_tensor * q = linear(ctx, cur, L.q_w, L.q_b, loras, opt, false, head);
        ggml_tensor * k = linear(ctx, cur, L.k_w, L.k_b, loras, opt, false, head);
        ggml_tensor * v = linear(ctx, cur, L.v_w, L.v_b, loras, opt, false, head);
        q = ggml_reshape_4d(ctx, q, q->ne[0] / heads, heads, n, n_images);
        k = ggml_reshape_4d(ctx, k, k->ne[0] / heads, heads, n, n_images);
        v = ggml_reshape_4d(ctx, v, v->ne[0] / heads, heads, n, n_images);
        q = ggml_permute(ctx, q, 0, 2, 1, 3);                   // [hd, N, heads, B]
        k = ggml_permute(ctx, k, 0, 2, 1, 3);                   // [hd, N, heads, B]
        if (opt.flash) {
            cur = flash_attention(ctx, q, k, ggml_permute(ctx, v, 0, 2, 1, 3), scale, hd);
        } else {
            cur = blocked_attention(ctx, q, k, ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3)), scale);
        }
        cur = ggml_reshape_3d(ctx, cur, h, n, n_images);
        cur = linear(ctx, cur, L.o_w, L.o_b, loras, opt);
        x = ggml_add(ctx, x, cur);

        cur = layer_norm(ctx, x, L.ln2_w, L.ln2_b, hp.eps);
        cur = linear(ctx, cur, L.up_w, L.up_b, loras, opt, /*gelu=*/true);
        cur = linear(ctx, cur, L.down_w, L.down_b, loras, opt);
        x = ggml_add(ctx, x, cur);
    }
    x = layer_norm(ctx, x, m.post_ln_w, m.post_ln_b, hp.eps);
    ggml_set_name(x, "vision_out");
    // The projector's output enters the decoder unscaled (SPEC §1.3, "Decisions").
    x = linear(ctx, x, m.proj_w, m.proj_b, loras, opt);
    ggml_set_name(x, "image_embeddings");
    return x;
}

// Flash attention where its f32 kernel is tiled: ggml's CPU backend (benchmarks/src/attention.mjs, So400m at f16 on
// an AVX2 CPU: 1.11× the blocked path's speed at 224 px, 1.37× at 896 with 7% less peak RSS; features within
// 2e-5). GPU backends keep the blocked path (not measured there; ggml's GPU flash kernels are built for f16 K/V). Towers under
// 256 patches (no PaliGemma resolution; the demo model's 112 px) keep it too: their scores are a few kilobytes,
// and the demo's near-tied location tokens, recorded in the README, move with a 5e-5 change of its features.
// PALI_VISION_FLASH=0|1 forces either path, for benchmarks and parity tests.
bool use_flash_attention(ggml_backend_dev_t device, int64_t n_patches) {
    const char * env = getenv("PALI_VISION_FLASH");
    if (env != nullptr && *env != '\0') return strcmp(env, "0") != 0;
    return ggml_backend_dev_type(device) == GGML_BACKEND_DEVICE_TYPE_CPU && n_patches >= 256;
}

} // namespace

int32_t encode_images(const vision_model & model, ggml_backend_dev_t device, const float * pixels, int n_images, int n_threads,
                      const vision_lora_set & loras, float * out, const volatile int32_t * abort) {
    const auto & hp = model.hparams;
    if (n_images <= 0) return fail(PALI_ERR_INVALID_ARGUMENT, "no images to encode");
    // The patch embedding adds about ten nodes per image (a 512-image batch overflowed a fixed size).
    // Each adapted matrix adds four nodes per adapter.
    graph_options opt;
    opt.flash = use_flash_attention(device, hp.n_patches);
    // pali's product on the CPU, for the towers of PaliGemma's resolutions: as with flash attention, one under 256
    // patches (the 112 px demo) keeps ggml's, whose products there take microseconds either way, and the demo's
    // near-tied location tokens in the README stay (pali's f32 activations move one of them by a bin).
    opt.cpu_gemm = ggml_backend_dev_type(device) == GGML_BACKEND_DEVICE_TYPE_CPU && hp.n_patches >= 256;
    graph_runner runner(device, 8192 + 16 * (size_t) n_images + 1024 * loras.size(), n_threads, abort);
    ggml_tensor * inp = nullptr;
    return runner.run(
        "the image encode",
        [&](ggml_context * ctx) {
            inp = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, hp.image_size, hp.image_size, 3, n_images);
            ggml_set_name(inp, "pixels");
            ggml_set_input(inp);
            return build_graph(ctx, model, inp, n_images, loras, opt);
        },
        // pixels arrive as [B][3][S][S] (channel planes), which is ggml's [S, S, 3, B]
        [&]() { ggml_backend_tensor_set(inp, pixels, 0, ggml_nbytes(inp)); },
        [&](ggml_tensor * res) { ggml_backend_tensor_get(res, out, 0, ggml_nbytes(res)); });
}

} // namespace pali
