// The segmentation VQ-VAE decoder of PaliGemma (SPEC §8): 16 <seg> codes → a 64×64 float mask.
// Weights come from mask-decoder-f32.gguf (pali convert --seg-vae vae-oid.npz); see docs/model-format.md.
#pragma once

#include "ggml-backend.h"
#include "ggml.h"

#include <string>
#include <vector>

namespace pali {

struct mask_hparams {
    int32_t codebook_size = 0;   // K (128)
    int32_t n_embd = 0;          // D (512)
    int32_t channels = 0;        // C, width of the residual blocks (128)
    int32_t n_res_block = 0;     // 2
    int32_t n_upsample = 0;      // 4 transposed convolutions, C, C/2, C/4, C/8 output channels
    int32_t grid_size = 0;       // 4: the codes form a grid_size × grid_size grid, row-major
    int32_t mask_size = 0;       // grid_size · 2^n_upsample (64)
    int32_t n_tokens() const { return grid_size * grid_size; }
};

struct mask_conv {
    ggml_tensor * w = nullptr; // ggml [kW, kH, in, out] (PyTorch [out, in, kH, kW]); transposed: [kW, kH, out, in]
    ggml_tensor * b = nullptr; // [out]
};

struct mask_res_block {
    mask_conv conv1; // 3×3, padding 1
    mask_conv conv2; // 3×3, padding 1
    mask_conv conv3; // 1×1
};

struct mask_model {
    mask_hparams                hparams;
    ggml_tensor *               codebook = nullptr; // [D, K]
    mask_conv                   conv_in;            // 1×1, D → C
    std::vector<mask_res_block> res;
    std::vector<mask_conv>      up;                 // transposed 4×4, stride 2, padding 1
    mask_conv                   conv_out;           // 1×1, C/2^(n_upsample-1) → 1

    ggml_context *        ctx = nullptr;    // tensor metadata
    ggml_backend_buffer_t buffer = nullptr; // tensor data
    std::string           name;

    mask_model() = default;
    mask_model(const mask_model &) = delete;
    mask_model & operator=(const mask_model &) = delete;
    ~mask_model();
};

// Loads and validates a mask decoder file: every key, tensor name, shape and type is checked before any
// data is read; the message names what is wrong. Returns a pali status.
int32_t load_mask_model(const char * path, ggml_backend_dev_t device, mask_model & out);

// Runs the decoder graph through ggml's backend scheduler (weights on `device`, the CPU backend for the
// rest). codes: n × n_tokens indices, already checked to be in [0, K); out: n × mask_size² floats.
int32_t decode_masks(const mask_model & model, ggml_backend_dev_t device, const int32_t * codes, int n, int n_threads,
                     float * out);

} // namespace pali
