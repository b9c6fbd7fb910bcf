// C API over pali::vision_model.
#include "siglip.h"
#include "vision_model.h"

#include "../core/internal.h"

#include <cmath>
#include <memory>
#include <string>

struct pali_vision_model {
    pali::vision_model model;
    ggml_backend_dev_t device = nullptr;
};

namespace {

ggml_backend_dev_t pick_device(bool use_gpu) {
    if (use_gpu) {
        for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
            ggml_backend_dev_t d = ggml_backend_dev_get(i);
            if (ggml_backend_dev_type(d) == GGML_BACKEND_DEVICE_TYPE_GPU) return d;
        }
    }
    return ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
}

} // namespace

extern "C" {

struct pali_vision_model_params pali_vision_model_default_params(void) {
    pali_vision_model_params p;
    p.use_gpu = true;
    return p;
}

int32_t pali_vision_model_load(const char * path, struct pali_vision_model_params params, pali_vision_model ** out) {
    return pali::guard("pali_vision_model_load", [&]() -> int32_t {
        if (path == nullptr || out == nullptr) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "path and out are required");
        *out = nullptr;
        ggml_backend_dev_t device = pick_device(params.use_gpu);
        if (device == nullptr) return pali::fail(PALI_ERR_BACKEND, "no ggml device is available; was pali_backend_init called?");
        auto handle = std::make_unique<pali_vision_model>();
        handle->device = device;
        const int32_t status = pali::load_vision_model(path, device, handle->model);
        if (status != PALI_OK) return status;
        *out = handle.release();
        return PALI_OK;
    });
}

void pali_vision_model_free(pali_vision_model * model) { delete model; }

int32_t pali_vision_model_get_info(const pali_vision_model * model, struct pali_vision_model_info * out) {
    if (model == nullptr || out == nullptr) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "model and out are required");
    const auto & hp = model->model.hparams;
    out->image_size        = hp.image_size;
    out->patch_size        = hp.patch_size;
    out->image_token_count = hp.n_patches;
    out->n_embd            = hp.n_embd;
    out->n_ff              = hp.n_ff;
    out->n_layer           = hp.n_layer;
    out->n_head            = hp.n_head;
    out->projection_dim    = hp.projection_dim;
    out->layer_norm_eps    = hp.eps;
    out->size_bytes        = 0;
    for (ggml_backend_buffer_t b : model->model.buffers) out->size_bytes += ggml_backend_buffer_get_size(b);
    out->device            = ggml_backend_dev_name(model->device);
    return PALI_OK;
}

int32_t pali_vision_model_encode(const pali_vision_model * model, const float * pixels, int32_t n_images, int32_t n_threads,
                                 float * out, size_t out_count, const volatile int32_t * abort) {
    return pali_vision_model_encode_lora(model, pixels, n_images, n_threads, 0, nullptr, nullptr, out, out_count, abort);
}

int32_t pali_vision_model_add_lora(pali_vision_model * model, const char * path, int32_t * index) {
    return pali::guard("pali_vision_model_add_lora", [&]() -> int32_t {
        if (model == nullptr || path == nullptr || index == nullptr) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "model, path and index are required");
        auto lora = std::make_unique<pali::vision_lora>();
        const int32_t status = pali::load_vision_lora(path, model->model, model->device, *lora);
        if (status != PALI_OK) return status;
        model->model.loras.push_back(std::move(lora));
        *index = (int32_t) model->model.loras.size() - 1;
        return PALI_OK;
    });
}

int32_t pali_vision_model_encode_lora(const pali_vision_model * model, const float * pixels, int32_t n_images, int32_t n_threads,
                                      int32_t n_loras, const int32_t * loras, const float * scales, float * out, size_t out_count,
                                      const volatile int32_t * abort) {
    return pali::guard("pali_vision_model_encode", [&]() -> int32_t {
        if (model == nullptr || pixels == nullptr || out == nullptr || n_images <= 0) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "model, pixels, out and at least one image are required");
        }
        const auto & hp = model->model.hparams;
        if (out_count != (size_t) n_images * hp.n_patches * hp.projection_dim) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "out has room for " + std::to_string(out_count) + " floats, " +
                                                             std::to_string((size_t) n_images * hp.n_patches * hp.projection_dim) + " are needed");
        }
        pali::vision_lora_set set;
        if (n_loras < 0 || (n_loras > 0 && (loras == nullptr || scales == nullptr))) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "loras and scales are required when n_loras > 0");
        }
        for (int32_t i = 0; i < n_loras; i++) {
            if (loras[i] < 0 || loras[i] >= (int32_t) model->model.loras.size()) {
                return pali::fail(PALI_ERR_INVALID_ARGUMENT, "no vision LoRA " + std::to_string(loras[i]) + " on this model");
            }
            if (!std::isfinite(scales[i])) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "a LoRA scale is not finite");
            if (scales[i] != 0.0f) set.emplace_back(model->model.loras[loras[i]].get(), scales[i]);
        }
        // Compute buffers are per call, so several encodes may run at once on one model.
        return pali::encode_images(model->model, model->device, pixels, n_images, n_threads, set, out, abort);
    });
}

} // extern "C"
