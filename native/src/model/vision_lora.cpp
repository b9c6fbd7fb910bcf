// Vision LoRA GGUF (pali convert --lora) → pali::vision_lora, checked against the loaded tower before any
// data is read.
#include "vision_model.h"

#include "gguf_weights.h"

#include "../core/internal.h"

#include "gguf.h"

#include <string>

namespace pali {

vision_lora::~vision_lora() {
    if (buffer) ggml_backend_buffer_free(buffer);
    if (ctx) ggml_free(ctx);
}

namespace {

bool ends_with(const std::string & s, const std::string & suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The model's matrices an adapter may change: the attention and MLP weights of every layer and the projector.
const ggml_tensor * adaptable_weight(const vision_model & m, const std::string & name) {
    if (name == "mm.proj.weight") return m.proj_w;
    for (size_t i = 0; i < m.layers.size(); i++) {
        const auto & L = m.layers[i];
        const std::string b = "v.blk." + std::to_string(i) + ".";
        if (name.rfind(b, 0) != 0) continue;
        const std::string rest = name.substr(b.size());
        if (rest == "attn_q.weight") return L.q_w;
        if (rest == "attn_k.weight") return L.k_w;
        if (rest == "attn_v.weight") return L.v_w;
        if (rest == "attn_out.weight") return L.o_w;
        if (rest == "ffn_up.weight") return L.up_w;
        if (rest == "ffn_down.weight") return L.down_w;
    }
    return nullptr;
}

} // namespace

int32_t load_vision_lora(const char * path, const vision_model & model, ggml_backend_dev_t device, vision_lora & out) {
    ggml_context * meta = nullptr;
    gguf_init_params params = { /*no_alloc =*/ true, /*ctx =*/ &meta };
    gguf_ptr gguf(gguf_init_from_file(path, params));
    if (!gguf) return fail(PALI_ERR_MODEL_FORMAT, std::string("ggml could not read ") + path + " as GGUF; is it a vision LoRA file made by pali convert --lora?");
    out.ctx = meta;

    gguf_checker l("vision LoRA", path, gguf.get(), meta);
    std::string arch, type, adapter;
    if (!l.get_str("general.architecture", arch) || !l.get_str("general.type", type) || !l.get_str("adapter.type", adapter)) {
        return fail(PALI_ERR_MODEL_FORMAT, l.message());
    }
    if (arch != "clip" || type != "adapter" || adapter != "lora") {
        return fail(PALI_ERR_MODEL_FORMAT, std::string("invalid vision LoRA file ") + path + ": expected a clip LoRA adapter, found " + arch + " " + type +
                                               " " + adapter);
    }

    const int64_t n = gguf_get_n_tensors(gguf.get());
    for (int64_t i = 0; i < n; i++) {
        const std::string name = gguf_get_tensor_name(gguf.get(), i);
        const bool is_a = ends_with(name, ".lora_a");
        if (!is_a && !ends_with(name, ".lora_b")) return fail(PALI_ERR_MODEL_FORMAT, "invalid vision LoRA file " + std::string(path) + ": tensor " + name + " is not a lora_a or lora_b");
        if (!is_a) continue;
        const std::string base = name.substr(0, name.size() - 7);
        const ggml_tensor * w = adaptable_weight(model, base);
        if (w == nullptr) {
            return fail(PALI_ERR_MODEL_FORMAT, "invalid vision LoRA file " + std::string(path) + ": " + base +
                                                   " is not a matrix of this mmproj's tower or projector (an adapter for another model?)");
        }
        const ggml_tensor * declared = ggml_get_tensor(meta, name.c_str());
        const int64_t rank = declared->ne[1];
        if (rank < 1 || rank > w->ne[0]) return fail(PALI_ERR_MODEL_FORMAT, "invalid vision LoRA file " + std::string(path) + ": " + name + " has rank " + std::to_string(rank));
        vision_lora::pair p;
        // A adapts the input side, B the output side; shapes that disagree with the tower mean another base model.
        p.a = l.tensor(name, { w->ne[0], rank }, true);
        p.b = l.tensor(base + ".lora_b", { rank, w->ne[1] }, true);
        if (p.a == nullptr || p.b == nullptr) return fail(PALI_ERR_MODEL_FORMAT, l.message() + " (an adapter for another base model?)");
        out.by_weight[w] = p;
    }
    if (l.used() != n) {
        return fail(PALI_ERR_MODEL_FORMAT, std::string("invalid vision LoRA file ") + path + ": a lora_b tensor has no lora_a");
    }
    if (n == 0) return PALI_OK;
    return load_weights(path, gguf.get(), meta, device, &out.buffer);
}

} // namespace pali
