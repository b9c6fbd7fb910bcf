// The SigLIP tower and projector of an mmproj GGUF: hyperparameters and weights in a backend buffer.
#pragma once

#include "ggml-backend.h"
#include "ggml.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pali {

struct vision_hparams {
    int32_t image_size = 0;
    int32_t patch_size = 0;
    int32_t n_embd = 0;
    int32_t n_ff = 0;
    int32_t n_layer = 0;
    int32_t n_head = 0;
    int32_t projection_dim = 0;
    int32_t n_patches = 0;  // (image_size / patch_size)^2
    float   eps = 1e-6f;
};

struct vision_layer {
    ggml_tensor * ln1_w = nullptr, * ln1_b = nullptr;
    ggml_tensor * q_w = nullptr, * q_b = nullptr;
    ggml_tensor * k_w = nullptr, * k_b = nullptr;
    ggml_tensor * v_w = nullptr, * v_b = nullptr;
    ggml_tensor * o_w = nullptr, * o_b = nullptr;
    ggml_tensor * ln2_w = nullptr, * ln2_b = nullptr;
    ggml_tensor * up_w = nullptr, * up_b = nullptr;
    ggml_tensor * down_w = nullptr, * down_b = nullptr;
};

// A LoRA adapter for the tower and projector: for each adapted weight W [in, out] (ggml order), A [in, r] and
// B [r, out], so that W·x becomes W·x + scale·B·(A·x) (PEFT's scaling is folded into B by the converter).
struct vision_lora {
    struct pair {
        ggml_tensor * a = nullptr;
        ggml_tensor * b = nullptr;
    };
    std::map<const ggml_tensor *, pair> by_weight;
    ggml_context *          ctx = nullptr;
    ggml_backend_buffer_t   buffer = nullptr;

    vision_lora() = default;
    vision_lora(const vision_lora &) = delete;
    vision_lora & operator=(const vision_lora &) = delete;
    ~vision_lora();
};

// The adapters one encode applies, with their scales.
using vision_lora_set = std::vector<std::pair<const vision_lora *, float>>;

struct vision_model {
    vision_hparams            hparams;
    ggml_tensor *             patch_w = nullptr;
    ggml_tensor *             patch_b = nullptr;
    ggml_tensor *             pos = nullptr;
    std::vector<vision_layer> layers;
    ggml_tensor *             post_ln_w = nullptr;
    ggml_tensor *             post_ln_b = nullptr;
    ggml_tensor *             proj_w = nullptr;
    ggml_tensor *             proj_b = nullptr;

    ggml_context *          ctx = nullptr;    // tensor metadata
    std::vector<ggml_backend_buffer_t> buffers; // tensor data, one buffer per buffer type
    std::string             name;
    std::vector<std::unique_ptr<vision_lora>> loras; // added before use, never removed

    ~vision_model();
};

// Loads and validates an mmproj file: every key, tensor name, shape and type is checked before any
// data is read; the message names what is wrong. Returns a pali status.
int32_t load_vision_model(const char * path, ggml_backend_dev_t device, vision_model & out);

// Loads a vision LoRA file (pali convert --lora) for `model`: every tensor must adapt one of the model's
// matrices with matching shapes; the message names the first that does not.
int32_t load_vision_lora(const char * path, const vision_model & model, ggml_backend_dev_t device, vision_lora & out);

} // namespace pali
