// The segmentation VQ-VAE decoder (SPEC §8.3): loader, ggml graph and C API.
//
// Every op stays in float32: ggml_conv_2d rounds its im2col to f16 and ggml_conv_transpose_2d_p0 has no
// padding and runs naive loops on some backends, so the convolutions are composed from exact ops:
//   - 3×3 conv: ggml_im2col(..., GGML_TYPE_F32) and one matrix product;
//   - 1×1 conv: one matrix product;
//   - 4×4 transposed conv, stride 2, padding 1: one matrix product gives every (input pixel, kernel tap)
//     contribution, and the taps are scattered onto the output by phase (see conv_transpose below).
// Activations are channel-fastest: ggml [C, W, H, N].
#include "mask_decoder.h"

#include "gguf_weights.h"
#include "graph_runner.h"

#include "../core/internal.h"

#include "ggml-alloc.h"
#include "gguf.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace pali {

mask_model::~mask_model() {
    if (buffer) ggml_backend_buffer_free(buffer);
    if (ctx) ggml_free(ctx);
}

namespace {

// ---- loading ---------------------------------------------------------------------------------------

constexpr const char * ARCH = "paligemma-mask-decoder";


// Tensors here are f32 only (exact parity with big_vision); conv() reads a weight/bias pair.
class mask_loader : public gguf_checker {
  public:
    mask_loader(const char * path, const gguf_context * gguf, ggml_context * meta) : gguf_checker("mask decoder", path, gguf, meta) {}

    ggml_tensor * tensor(const std::string & name, const std::vector<int64_t> & shape) { return gguf_checker::tensor(name, shape, false); }

    mask_conv conv(const std::string & name, int64_t k, int64_t in, int64_t out) {
        return { tensor(name + ".weight", { k, k, in, out }), tensor(name + ".bias", { out }) };
    }
};

bool read_hparams(mask_loader & l, mask_hparams & hp, std::string & name) {
    std::string arch;
    if (!l.get_str("general.architecture", arch)) return false;
    if (arch != ARCH) {
        return l.error("general.architecture is \"" + arch + "\", expected \"" + ARCH +
                       "\" (make this file with `pali convert --seg-vae vae-oid.npz`)");
    }
    l.get_str("general.name", name);
    if (!l.get_u32("paligemma.mask.codebook_size", hp.codebook_size, 1, 65536) ||
        !l.get_u32("paligemma.mask.embedding_length", hp.n_embd, 1, 65536) ||
        !l.get_u32("paligemma.mask.channels", hp.channels, 1, 8192) ||
        !l.get_u32("paligemma.mask.res_block_count", hp.n_res_block, 0, 16) ||
        !l.get_u32("paligemma.mask.upsample_count", hp.n_upsample, 1, 8) ||
        !l.get_u32("paligemma.mask.grid_size", hp.grid_size, 1, 64) ||
        !l.get_u32("paligemma.mask.mask_size", hp.mask_size, 1, 4096)) {
        return false;
    }
    if (hp.channels % (1 << (hp.n_upsample - 1)) != 0) {
        return l.error("paligemma.mask.channels (" + std::to_string(hp.channels) + ") cannot be halved " +
                       std::to_string(hp.n_upsample - 1) + " times");
    }
    if (hp.mask_size != hp.grid_size << hp.n_upsample) {
        return l.error("paligemma.mask.mask_size is " + std::to_string(hp.mask_size) + ", but a " + std::to_string(hp.grid_size) +
                       "-wide grid upsampled " + std::to_string(hp.n_upsample) + " times gives " +
                       std::to_string(hp.grid_size << hp.n_upsample));
    }
    return true;
}

bool bind_tensors(mask_loader & l, mask_model & m) {
    const auto & hp = m.hparams;
    const int64_t c = hp.channels;
    m.codebook = l.tensor("mask.codebook", { hp.n_embd, hp.codebook_size });
    m.conv_in = l.conv("mask.dec.conv_in", 1, hp.n_embd, c);
    m.res.resize(hp.n_res_block);
    for (int r = 0; r < hp.n_res_block; r++) {
        const std::string b = "mask.dec.res." + std::to_string(r);
        m.res[r].conv1 = l.conv(b + ".conv1", 3, c, c);
        m.res[r].conv2 = l.conv(b + ".conv2", 3, c, c);
        m.res[r].conv3 = l.conv(b + ".conv3", 1, c, c);
    }
    m.up.resize(hp.n_upsample);
    int64_t in = c;
    for (int j = 0; j < hp.n_upsample; j++) {
        const int64_t out = c >> j;
        const std::string b = "mask.dec.up." + std::to_string(j);
        // PyTorch ConvTranspose2d layout [in, out, kH, kW] → ggml [kW, kH, out, in]
        m.up[j] = { l.tensor(b + ".weight", { 4, 4, out, in }), l.tensor(b + ".bias", { out }) };
        in = out;
    }
    m.conv_out = l.conv("mask.dec.conv_out", 1, in, 1);
    return l.message().empty();
}

// ---- graph -----------------------------------------------------------------------------------------

// x: [IC, W, H, N] → [OC, W, H, N]
ggml_tensor * conv1x1(ggml_context * ctx, ggml_tensor * x, const mask_conv & c) {
    const int64_t ic = c.w->ne[2], oc = c.w->ne[3];
    ggml_tensor * y = ggml_mul_mat(ctx, ggml_reshape_2d(ctx, c.w, ic, oc), ggml_reshape_2d(ctx, x, ic, ggml_nelements(x) / ic));
    y = ggml_reshape_4d(ctx, y, oc, x->ne[1], x->ne[2], x->ne[3]);
    return ggml_add(ctx, y, c.b);
}

// 3×3 cross-correlation with zero padding 1 (PyTorch Conv2d), in f32. x: [IC, W, H, N] → [OC, W, H, N]
ggml_tensor * conv3x3(ggml_context * ctx, ggml_tensor * x, const mask_conv & c) {
    const int64_t ic = c.w->ne[2], oc = c.w->ne[3], w = x->ne[1], h = x->ne[2], n = x->ne[3];
    ggml_tensor * planes = ggml_cont(ctx, ggml_permute(ctx, x, 2, 0, 1, 3));                 // [W, H, IC, N]
    ggml_tensor * cols = ggml_im2col(ctx, c.w, planes, 1, 1, 1, 1, 1, 1, true, GGML_TYPE_F32); // [IC·3·3, W, H, N]
    ggml_tensor * y = ggml_mul_mat(ctx, ggml_reshape_2d(ctx, c.w, 9 * ic, oc), ggml_reshape_2d(ctx, cols, 9 * ic, w * h * n));
    y = ggml_reshape_4d(ctx, y, oc, w, h, n);
    return ggml_add(ctx, y, c.b);
}

// PyTorch ConvTranspose2d(kernel 4, stride 2, padding 1), weight [in, out, kH, kW] (ggml [kW, kH, out, in]):
//   out[o, y, x] = b[o] + Σ_{i, iy, ix} in[i, iy, ix] · W[i, o, ky, kx],  y = 2·iy − 1 + ky,  x = 2·ix − 1 + kx.
// With kx = 2·qx + rx (qx, rx ∈ {0, 1}), x + 1 = 2·(ix + qx) + rx: tap (qx, rx) of input column ix lands in
// column block ix + qx at phase rx of a (2W + 2)-wide padded output, of which columns 1 .. 2W are kept (the
// same for rows). So: one product gives every tap of every input pixel, each qx/qy slice is shifted into
// place by zero padding, the four slices are summed, and the phases are interleaved with the blocks.
// x: [IC, W, H, N] → [OC, 2W, 2H, N]
ggml_tensor * conv_transpose(ggml_context * ctx, ggml_tensor * x, const mask_conv & c) {
    const int64_t oc = c.w->ne[2], ic = c.w->ne[3], w = x->ne[1], h = x->ne[2], n = x->ne[3];
    // weight as [IC, OC, rx, ry, qx, qy] (kx = rx + 2·qx, ky = ry + 2·qy)
    ggml_tensor * k = ggml_cont(ctx, ggml_permute(ctx, c.w, 2, 3, 1, 0));   // [IC, OC, kx, ky]
    k = ggml_reshape_4d(ctx, k, ic * oc * 2, 2, 2, 2);                      // [IC·OC·rx, qx, ry, qy]
    k = ggml_cont(ctx, ggml_permute(ctx, k, 0, 2, 1, 3));                   // [IC·OC·rx, ry, qx, qy]
    k = ggml_reshape_2d(ctx, k, ic, oc * 16);
    // every tap of every input pixel: row o + OC·(rx + 2·ry + 4·qx + 8·qy), column (ix, iy, n)
    ggml_tensor * taps = ggml_mul_mat(ctx, k, ggml_reshape_2d(ctx, x, ic, w * h * n)); // [OC·16, W·H·N]
    const size_t row = taps->nb[1];
    ggml_tensor * sum = nullptr;
    for (int qy = 0; qy < 2; qy++) {
        for (int qx = 0; qx < 2; qx++) {
            const size_t offset = (size_t) (qx + 2 * qy) * 4 * oc * ggml_element_size(taps);
            ggml_tensor * part = ggml_cont(ctx, ggml_view_4d(ctx, taps, 4 * oc, w, h, n, row, row * w, row * w * h, offset));
            part = ggml_pad_ext(ctx, part, 0, 0, qx, 1 - qx, qy, 1 - qy, 0, 0); // [OC·rx·ry, W+1, H+1, N]
            sum = sum == nullptr ? part : ggml_add(ctx, sum, part);
        }
    }
    // [OC·rx, ry, bx, by·N] → [OC·rx, bx, ry, by·N]: x' = rx + 2·bx, y' = ry + 2·by
    ggml_tensor * y = ggml_reshape_4d(ctx, sum, 2 * oc, 2, w + 1, (h + 1) * n);
    y = ggml_cont(ctx, ggml_permute(ctx, y, 0, 2, 1, 3));
    y = ggml_reshape_4d(ctx, y, oc, 2 * w + 2, 2 * h + 2, n);
    // keep x', y' in 1 .. 2W (padding 1)
    y = ggml_view_4d(ctx, y, oc, 2 * w, 2 * h, n, y->nb[1], y->nb[2], y->nb[3], y->nb[1] + y->nb[2]);
    y = ggml_cont(ctx, y);
    return ggml_add(ctx, y, c.b);
}

// codes: [T·N] i32 → masks [S·S·N] (x fastest, then y, then mask)
ggml_tensor * build_graph(ggml_context * ctx, const mask_model & m, ggml_tensor * codes, int n) {
    const auto & hp = m.hparams;
    // 1. codebook rows; code k sits at grid row k / G, column k % G, so [D, T·N] is [D, G(x), G(y), N]
    ggml_tensor * x = ggml_get_rows(ctx, m.codebook, codes);
    x = ggml_reshape_4d(ctx, x, hp.n_embd, hp.grid_size, hp.grid_size, n);
    ggml_set_name(x, "mask_embeddings");
    // 2. 1×1 conv, ReLU
    x = ggml_relu(ctx, conv1x1(ctx, x, m.conv_in));
    // 3. residual blocks: x + conv1x1(relu(conv3x3(relu(conv3x3(x))))), no ReLU after the sum
    for (const mask_res_block & r : m.res) {
        ggml_tensor * y = ggml_relu(ctx, conv3x3(ctx, x, r.conv1));
        y = ggml_relu(ctx, conv3x3(ctx, y, r.conv2));
        x = ggml_add(ctx, x, conv1x1(ctx, y, r.conv3));
    }
    ggml_set_name(x, "mask_res_out");
    // 4. transposed convs, each followed by ReLU
    for (const mask_conv & u : m.up) x = ggml_relu(ctx, conv_transpose(ctx, x, u));
    ggml_set_name(x, "mask_up_out");
    // 5. 1×1 conv to one channel: [1, S, S, N]
    x = conv1x1(ctx, x, m.conv_out);
    ggml_set_name(x, "masks");
    return x;
}

constexpr int MAX_BATCH = 16;    // masks per graph
constexpr int GRAPH_SIZE = 2048; // nodes

} // namespace

int32_t load_mask_model(const char * path, ggml_backend_dev_t device, mask_model & m) {
    if (!file_ptr(fopen(path, "rb"))) return fail(PALI_ERR_IO, std::string("could not open ") + path);
    ggml_context * meta = nullptr;
    gguf_init_params params = { /*no_alloc =*/ true, /*ctx =*/ &meta };
    gguf_ptr gguf(gguf_init_from_file(path, params));
    if (!gguf) {
        return fail(PALI_ERR_MODEL_FORMAT,
                    std::string("ggml could not read ") + path + " as GGUF; make it with `pali convert --seg-vae vae-oid.npz`");
    }
    m.ctx = meta;

    mask_loader l(path, gguf.get(), meta);
    if (!read_hparams(l, m.hparams, m.name) || !bind_tensors(l, m)) return fail(PALI_ERR_MODEL_FORMAT, l.message());
    if (l.used() != gguf_get_n_tensors(gguf.get())) {
        return fail(PALI_ERR_MODEL_FORMAT, std::string("invalid mask decoder file ") + path + ": it holds " +
                                               std::to_string(gguf_get_n_tensors(gguf.get()) - l.used()) +
                                               " tensor(s) pali does not know");
    }

    return load_weights(path, gguf.get(), meta, device, &m.buffer);
}

int32_t decode_masks(const mask_model & m, ggml_backend_dev_t device, const int32_t * codes, int n, int n_threads, float * out) {
    const auto & hp = m.hparams;
    // A runner per call, so several decodes may run at once on one model.
    graph_runner runner(device, GRAPH_SIZE, n_threads, nullptr);
    const int64_t tokens = hp.n_tokens(), pixels = (int64_t) hp.mask_size * hp.mask_size;
    for (int first = 0; first < n; first += MAX_BATCH) {
        const int count = n - first < MAX_BATCH ? n - first : MAX_BATCH;
        ggml_tensor * inp = nullptr;
        const int32_t status = runner.run(
            "the mask decoder",
            [&](ggml_context * ctx) {
                inp = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, tokens * count);
                ggml_set_name(inp, "seg_codes");
                ggml_set_input(inp);
                return build_graph(ctx, m, inp, count);
            },
            [&]() { ggml_backend_tensor_set(inp, codes + first * tokens, 0, ggml_nbytes(inp)); },
            [&](ggml_tensor * res) { ggml_backend_tensor_get(res, out + first * pixels, 0, ggml_nbytes(res)); });
        if (status != PALI_OK) return status;
    }
    return PALI_OK;
}

} // namespace pali

// ---- C API -------------------------------------------------------------------------------------------

struct pali_mask_decoder {
    pali::mask_model   model;
    ggml_backend_dev_t device = nullptr;
};

extern "C" {

struct pali_mask_decoder_params pali_mask_decoder_default_params(void) {
    pali_mask_decoder_params p;
    p.use_gpu = true;
    return p;
}

int32_t pali_mask_decoder_load(const char * path, struct pali_mask_decoder_params params, pali_mask_decoder ** out) {
    return pali::guard("pali_mask_decoder_load", [&]() -> int32_t {
        if (path == nullptr || out == nullptr) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "path and out are required");
        *out = nullptr;
        ggml_backend_dev_t device = nullptr;
        if (params.use_gpu) {
            for (size_t i = 0; i < ggml_backend_dev_count() && device == nullptr; i++) {
                ggml_backend_dev_t d = ggml_backend_dev_get(i);
                if (ggml_backend_dev_type(d) == GGML_BACKEND_DEVICE_TYPE_GPU) device = d;
            }
        }
        if (device == nullptr) device = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
        if (device == nullptr) return pali::fail(PALI_ERR_BACKEND, "no ggml device is available; was pali_backend_init called?");
        auto handle = std::make_unique<pali_mask_decoder>();
        handle->device = device;
        const int32_t status = pali::load_mask_model(path, device, handle->model);
        if (status != PALI_OK) return status;
        *out = handle.release();
        return PALI_OK;
    });
}

void pali_mask_decoder_free(pali_mask_decoder * decoder) { delete decoder; }

int32_t pali_mask_decoder_get_info(const pali_mask_decoder * decoder, struct pali_mask_decoder_info * out) {
    if (decoder == nullptr || out == nullptr) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "decoder and out are required");
    const auto & hp = decoder->model.hparams;
    out->codebook_size    = hp.codebook_size;
    out->embedding_length = hp.n_embd;
    out->token_count      = hp.n_tokens();
    out->grid_size        = hp.grid_size;
    out->mask_size        = hp.mask_size;
    out->size_bytes       = decoder->model.buffer ? ggml_backend_buffer_get_size(decoder->model.buffer) : 0;
    out->device           = ggml_backend_dev_name(decoder->device);
    return PALI_OK;
}

int32_t pali_mask_decoder_decode(const pali_mask_decoder * decoder, const int32_t * codes, int32_t n_masks, int32_t n_threads,
                                 float * out, size_t out_count) {
    return pali::guard("pali_mask_decoder_decode", [&]() -> int32_t {
        if (decoder == nullptr || codes == nullptr || out == nullptr || n_masks <= 0) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "decoder, codes, out and at least one mask are required");
        }
        const auto & hp = decoder->model.hparams;
        const size_t need = (size_t) n_masks * hp.mask_size * hp.mask_size;
        if (out_count != need) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT,
                              "out has room for " + std::to_string(out_count) + " floats, " + std::to_string(need) + " are needed");
        }
        // ggml_get_rows does not check its indices: every code is checked here.
        const int64_t n_codes = (int64_t) n_masks * hp.n_tokens();
        for (int64_t i = 0; i < n_codes; i++) {
            if (codes[i] < 0 || codes[i] >= hp.codebook_size) {
                return pali::fail(PALI_ERR_INVALID_ARGUMENT, "code " + std::to_string(codes[i]) + " of mask " +
                                                                 std::to_string(i / hp.n_tokens()) + " is outside 0.." +
                                                                 std::to_string(hp.codebook_size - 1));
            }
        }
        return pali::decode_masks(decoder->model, decoder->device, codes, n_masks, n_threads, out);
    });
}

} // extern "C"
