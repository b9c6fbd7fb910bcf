// The SigLIP tower and projector of an mmproj GGUF: hyperparameters and weights in a backend buffer.
#pragma once

#include "ggml-backend.h"
#include "ggml.h"

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
    ggml_backend_buffer_t   buffer = nullptr; // tensor data
    std::string             name;

    ~vision_model();
};

// Loads and validates an mmproj file: every key, tensor name, shape and type is checked before any
// data is read; the message names what is wrong. Returns a pali status.
int32_t load_vision_model(const char * path, ggml_backend_dev_t device, vision_model & out);

} // namespace pali
