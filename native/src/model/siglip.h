// Runs the SigLIP image encoder + projector graph of a loaded vision model.
#pragma once

#include "vision_model.h"

#include "ggml-backend.h"

#include <vector>

namespace pali {

class vision_runner {
  public:
    // device: where the weights live (the CPU backend is always added for ops the device lacks)
    vision_runner(const vision_model & model, ggml_backend_dev_t device);
    ~vision_runner();
    vision_runner(const vision_runner &) = delete;
    vision_runner & operator=(const vision_runner &) = delete;

    // pixels: n_images × [3][S][S] normalized floats; out: n_images × [N][D] image embeddings.
    // abort (may be null): non-zero stops the graph between nodes (CPU backend) with PALI_ERR_ABORTED.
    // The scheduler is sized for the first call's batch: one runner serves one encode.
    int32_t encode(const float * pixels, int n_images, int n_threads, float * out, const volatile int32_t * abort = nullptr);

  private:
    const vision_model &           model_;
    std::vector<ggml_backend_t>    backends_;
    ggml_backend_t                 cpu_ = nullptr;
    ggml_backend_sched_t           sched_ = nullptr;
    ggml_backend_set_n_threads_t   set_threads_ = nullptr;
    ggml_backend_set_abort_callback_t set_abort_ = nullptr;
};

} // namespace pali
