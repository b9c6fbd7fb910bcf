// Internal: the state behind a pali_context, shared by prefix_lm.cpp (prefix, sampling, scoring) and
// beam.cpp (beam search).
#pragma once

#include "../model/text_model.h"

#include "llama.h"

#include <atomic>

struct pali_context {
    const pali_text_model * model = nullptr;
    llama_context *         lctx = nullptr;
    int32_t                 n_ctx = 0;
    int32_t                 n_seq_max = 1;
    int32_t                 n_ubatch = 0;
    int32_t                 n_past = 0;   // positions used; the next token goes at n_past + 1 (1-based, as HF)
    std::atomic<bool>       abort{false};
    pali_timings            timings{};
    ggml_threadpool *       threadpool = nullptr; // persistent CPU threads (see pali_context_init)
    void (*threadpool_free)(ggml_threadpool *) = nullptr;
};

namespace pali {

// Maps llama_decode's return value to a pali status (and records the message).
int32_t decode_status(int32_t ret, pali_context * ctx);

} // namespace pali
