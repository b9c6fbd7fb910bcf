// Runs the SigLIP image encoder + projector graph of a loaded vision model.
#pragma once

#include "vision_model.h"

#include "ggml-backend.h"


namespace pali {

// Encodes n_images preprocessed images (n_images × [3][S][S] normalized floats) into out (n_images × [N][D]
// image embeddings) on `device` (the CPU backend is always added for ops the device lacks). abort (may be
// null): non-zero stops the graph between nodes with PALI_ERR_ABORTED.
// loras: adapters applied to the tower's and projector's matrices (may be empty).
int32_t encode_images(const vision_model & model, ggml_backend_dev_t device, const float * pixels, int n_images, int n_threads,
                      const vision_lora_set & loras, float * out, const volatile int32_t * abort);

} // namespace pali
