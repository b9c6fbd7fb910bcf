// mmproj GGUF → pali::vision_model. All validation happens here, before ggml sees a tensor.
#include "vision_model.h"

#include "gguf_weights.h"

#include "../core/internal.h"

#include "ggml-alloc.h"
#include "gguf.h"

#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace pali {

vision_model::~vision_model() {
    for (ggml_backend_buffer_t b : buffers) ggml_backend_buffer_free(b);
    if (ctx) ggml_free(ctx);
}

namespace {

bool read_hparams(gguf_checker & l, vision_hparams & hp, std::string & name) {
    std::string arch, projector;
    if (!l.get_str("general.architecture", arch)) return false;
    if (arch != "clip") return l.error("general.architecture is \"" + arch + "\", expected \"clip\" (is this the model file rather than the mmproj?)");
    if (!l.get_str("clip.projector_type", projector)) return false;
    if (projector != "paligemma") return l.error("clip.projector_type is \"" + projector + "\", expected \"paligemma\"");
    l.get_str("general.name", name);
    if (!l.get_u32("clip.vision.image_size", hp.image_size) || !l.get_u32("clip.vision.patch_size", hp.patch_size) ||
        !l.get_u32("clip.vision.embedding_length", hp.n_embd) || !l.get_u32("clip.vision.feed_forward_length", hp.n_ff) ||
        !l.get_u32("clip.vision.block_count", hp.n_layer) || !l.get_u32("clip.vision.attention.head_count", hp.n_head) ||
        !l.get_u32("clip.vision.projection_dim", hp.projection_dim) || !l.get_f32("clip.vision.attention.layer_norm_epsilon", hp.eps)) {
        return false;
    }
    if (hp.image_size % hp.patch_size != 0) return l.error("image size is not a multiple of the patch size");
    if (hp.n_embd % hp.n_head != 0) return l.error("embedding length is not a multiple of the head count");
    if (!(hp.eps > 0.0f && hp.eps < 1.0f)) return l.error("layer norm epsilon out of range");
    hp.n_patches = (hp.image_size / hp.patch_size) * (hp.image_size / hp.patch_size);
    return true;
}

bool bind_tensors(gguf_checker & l, vision_model & m) {
    const auto & hp = m.hparams;
    const int64_t h = hp.n_embd, f = hp.n_ff, p = hp.patch_size;
    m.patch_w = l.tensor("v.patch_embd.weight", {p, p, 3, h}, true);
    m.patch_b = l.tensor("v.patch_embd.bias", {h}, false);
    m.pos = l.tensor("v.position_embd.weight", {h, hp.n_patches}, false);
    m.layers.resize(hp.n_layer);
    for (int i = 0; i < hp.n_layer; i++) {
        auto & L = m.layers[i];
        const std::string b = "v.blk." + std::to_string(i) + ".";
        L.ln1_w = l.tensor(b + "ln1.weight", {h}, false);
        L.ln1_b = l.tensor(b + "ln1.bias", {h}, false);
        L.q_w = l.tensor(b + "attn_q.weight", {h, h}, true);
        L.q_b = l.tensor(b + "attn_q.bias", {h}, false);
        L.k_w = l.tensor(b + "attn_k.weight", {h, h}, true);
        L.k_b = l.tensor(b + "attn_k.bias", {h}, false);
        L.v_w = l.tensor(b + "attn_v.weight", {h, h}, true);
        L.v_b = l.tensor(b + "attn_v.bias", {h}, false);
        L.o_w = l.tensor(b + "attn_out.weight", {h, h}, true);
        L.o_b = l.tensor(b + "attn_out.bias", {h}, false);
        L.ln2_w = l.tensor(b + "ln2.weight", {h}, false);
        L.ln2_b = l.tensor(b + "ln2.bias", {h}, false);
        L.up_w = l.tensor(b + "ffn_up.weight", {h, f}, true);
        L.up_b = l.tensor(b + "ffn_up.bias", {f}, false);
        L.down_w = l.tensor(b + "ffn_down.weight", {f, h}, true);
        L.down_b = l.tensor(b + "ffn_down.bias", {h}, false);
        if (!l.message().empty()) return false;
    }
    m.post_ln_w = l.tensor("v.post_ln.weight", {h}, false);
    m.post_ln_b = l.tensor("v.post_ln.bias", {h}, false);
    m.proj_w = l.tensor("mm.proj.weight", {h, hp.projection_dim}, true);
    m.proj_b = l.tensor("mm.proj.bias", {hp.projection_dim}, false);
    return l.message().empty();
}

} // namespace

int32_t load_vision_model(const char * path, ggml_backend_dev_t device, vision_model & m) {
    ggml_context * meta = nullptr;
    gguf_init_params params = { /*no_alloc =*/ true, /*ctx =*/ &meta };
    gguf_ptr gguf(gguf_init_from_file(path, params));
    if (!gguf) return fail(PALI_ERR_MODEL_FORMAT, std::string("ggml could not read ") + path + " as GGUF; is it an mmproj file made by pali convert?");
    m.ctx = meta;

    gguf_checker l("mmproj", path, gguf.get(), meta);
    // paligemma.has_mask_decoder (false in files of earlier versions) is checked but means nothing now.
    bool bundled_mask_decoder = false;
    if (!read_hparams(l, m.hparams, m.name) || !l.get_optional_bool("paligemma.has_mask_decoder", bundled_mask_decoder) ||
        !bind_tensors(l, m)) {
        return fail(PALI_ERR_MODEL_FORMAT, l.message());
    }
    if (bundled_mask_decoder) {
        return fail(PALI_ERR_MODEL_FORMAT, std::string("invalid mmproj file ") + path + ": the mask decoder goes in its own file (pali convert --seg-vae)");
    }
    if (l.used() != gguf_get_n_tensors(gguf.get())) {
        return fail(PALI_ERR_MODEL_FORMAT, std::string("invalid mmproj file ") + path + ": it holds tensors pali does not know");
    }

    // The tower's and projector's matrices multiply activations only: the CPU's fastest layouts may hold them.
    std::set<const ggml_tensor *> matrices = { m.proj_w };
    for (const auto & L : m.layers) matrices.insert({ L.q_w, L.k_w, L.v_w, L.o_w, L.up_w, L.down_w });
    const int32_t status = load_placed_weights(path, gguf.get(), meta, device, matrices, m.buffers);
    if (status != PALI_OK) return status;
    return PALI_OK;
}

} // namespace pali
