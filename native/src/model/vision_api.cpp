// C API over pali::vision_model.
#include "siglip.h"
#include "vision_model.h"

#include "../core/internal.h"

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
    out->size_bytes        = model->model.buffer ? ggml_backend_buffer_get_size(model->model.buffer) : 0;
    out->device            = ggml_backend_dev_name(model->device);
    return PALI_OK;
}

int32_t pali_vision_model_encode(const pali_vision_model * model, const float * pixels, int32_t n_images, int32_t n_threads,
                                 float * out, size_t out_count, const volatile int32_t * abort) {
    return pali::guard("pali_vision_model_encode", [&]() -> int32_t {
        if (model == nullptr || pixels == nullptr || out == nullptr || n_images <= 0) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "model, pixels, out and at least one image are required");
        }
        const auto & hp = model->model.hparams;
        if (out_count != (size_t) n_images * hp.n_patches * hp.projection_dim) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "out has room for " + std::to_string(out_count) + " floats, " +
                                                             std::to_string((size_t) n_images * hp.n_patches * hp.projection_dim) + " are needed");
        }
        // Compute buffers are per call, so several encodes may run at once on one model.
        return pali::encode_images(model->model, model->device, pixels, n_images, n_threads, out, abort);
    });
}

} // extern "C"
