// Internal: the state behind a pali_context, shared by prefix_lm.cpp (prefix, sampling, scoring) and
// beam.cpp (beam search).
#pragma once

#include "../model/text_model.h"

#include "llama.h"

#include <atomic>
#include <vector>

// One request's state in continuous batching (pali_context_seq_*): its positions and its sampler.
struct pali_sequence {
    bool            active = false;
    int32_t         n_past = 0;
    llama_sampler * sampler = nullptr; // null: plain greedy (argmax) or no sampling (scoring)
};

struct pali_context {
    const pali_text_model * model = nullptr;
    llama_context *         lctx = nullptr;
    int32_t                 n_ctx = 0;
    int32_t                 n_seq_max = 1;
    int32_t                 n_ubatch = 0;
    int32_t                 n_threads = 1;
    int32_t                 n_past = 0;   // positions used; the next token goes at n_past + 1 (1-based, as HF)
    std::vector<pali_sequence> seqs;      // n_parallel of them; each holds at most n_ctx positions
    std::atomic<bool>       abort{false};
    pali_timings            timings{};
    ggml_threadpool *       threadpool = nullptr; // persistent CPU threads (see pali_context_init)
    ggml_threadpool *       threadpool_batch = nullptr; // the prefill's, where pali's product backend runs
    void (*threadpool_free)(ggml_threadpool *) = nullptr;
};

namespace pali {

// Maps llama_decode's return value to a pali status (and records the message).
int32_t decode_status(int32_t ret, pali_context * ctx);

// log(softmax(logits))[token] over the full vocabulary.
float token_logprob(const float * logits, int32_t n_vocab, int32_t token);

// The sampler chain for params (greedy, or penalties → top-k → top-p → min-p → temperature → seeded draw).
llama_sampler * make_sampler(const pali_generate_params & params, int32_t n_vocab);
bool            is_plain_greedy(const pali_generate_params & params);
int32_t         argmax(const float * logits, int32_t n_vocab);

// A prefix of n tokens must fit a sequence and the prefix batch.
int32_t check_prefix(const pali_context * ctx, int32_t n);

// [image rows][text tokens] as one bidirectional block at positions 1..n of seq; logits for the last row.
int32_t decode_prefix(pali_context * ctx, llama_seq_id seq, const float * image_embd, int32_t n_image, const int32_t * text_ids, int32_t n_text);

// Teacher-forced log-probabilities of suffix after seq's last decoded row (checked against the vocabulary
// and the context first); advances n_past.
int32_t score_suffix(pali_context * ctx, llama_seq_id seq, int32_t & n_past, const int32_t * suffix, int32_t n, float * logprobs);

// Whether any continuous-batching sequence holds cache cells (whole-context calls must wait for them).
bool sequences_active(const pali_context * ctx);

} // namespace pali
