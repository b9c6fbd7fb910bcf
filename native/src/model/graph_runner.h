// One way to run pali's own ggml graphs (the SigLIP encoder, the mask decoder): the model's device plus the
// CPU backend, a scheduler, the thread count, an abort flag. A runner serves one call on one thread;
// several runners may run at once on one model, since compute buffers are theirs.
#pragma once

#include "ggml-backend.h"
#include "ggml.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace pali {

class graph_runner {
  public:
    // device: where the weights live (may be null or the CPU); graph_size: the most nodes a graph may have.
    graph_runner(ggml_backend_dev_t device, size_t graph_size, int n_threads, const volatile int32_t * abort);
    ~graph_runner();
    graph_runner(const graph_runner &) = delete;
    graph_runner & operator=(const graph_runner &) = delete;

    // PALI_OK, or the status (with the error recorded) of a backend that could not start.
    int32_t status() const { return status_; }

    // Builds a graph in a fresh context (build creates the inputs, marked ggml_set_input, and returns the
    // output), allocates it, calls upload to set the inputs, computes, and calls download with the output.
    // `what` names the graph in errors. PALI_ERR_ABORTED when the abort flag stopped it.
    int32_t run(const char * what, const std::function<ggml_tensor *(ggml_context *)> & build, const std::function<void()> & upload,
                const std::function<void(ggml_tensor *)> & download);

  private:
    std::vector<ggml_backend_t> backends_;
    ggml_backend_sched_t        sched_ = nullptr;
    size_t                      graph_size_;
    const volatile int32_t *    abort_;
    int32_t                     status_;
};

} // namespace pali
