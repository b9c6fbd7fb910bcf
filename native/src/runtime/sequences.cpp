// Continuous batching on one pali_context: each request lives in its own sequence of the unified KV cache.
// Its prefix runs alone, as one bidirectional ubatch (libllama's non-causal mask still separates sequences,
// but only a lone prefix keeps other requests' decode rows causal); the decode steps of all active requests
// then share one llama_decode, so the weights are read once for all of them.
#include "../core/internal.h"
#include "prefix_lm.h"

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

namespace {

int32_t check_seq(const pali_context * ctx, int32_t seq) {
    if (seq < 0 || seq >= (int32_t) ctx->seqs.size()) {
        return pali::fail(PALI_ERR_INVALID_ARGUMENT, "sequence " + std::to_string(seq) + " is outside 0 .. " + std::to_string(ctx->seqs.size() - 1));
    }
    return PALI_OK;
}

void release(pali_context * ctx, int32_t seq) {
    pali_sequence & s = ctx->seqs[(size_t) seq];
    llama_memory_seq_rm(llama_get_memory(ctx->lctx), seq, -1, -1);
    llama_sampler_free(s.sampler);
    s = pali_sequence{};
}

// The next token of seq from logits row `row`: its sampler, or argmax without one.
int32_t sample(pali_context * ctx, pali_sequence & s, int32_t row, int32_t * token, float * logprob) {
    const float * logits = llama_get_logits_ith(ctx->lctx, row);
    if (logits == nullptr) return pali::fail(PALI_ERR_BACKEND, "libllama returned no logits");
    const int32_t n_vocab = ctx->model->n_vocab;
    *token = s.sampler != nullptr ? llama_sampler_sample(s.sampler, ctx->lctx, row) : pali::argmax(logits, n_vocab);
    *logprob = pali::token_logprob(logits, n_vocab, *token);
    return PALI_OK;
}

} // namespace

namespace pali {

bool sequences_active(const pali_context * ctx) {
    for (const pali_sequence & s : ctx->seqs) {
        if (s.active) return true;
    }
    return false;
}

} // namespace pali

extern "C" {

int32_t pali_context_seq_prefill(pali_context * ctx, int32_t seq, const float * image_embd, int32_t n_image, const int32_t * text_ids,
                                 int32_t n_text, const struct pali_generate_params * params, int32_t * token, float * logprob,
                                 float * logits, int32_t n_logits) {
    return pali::guard("pali_context_seq_prefill", [&]() -> int32_t {
        if (ctx == nullptr || (n_image > 0 && image_embd == nullptr) || text_ids == nullptr || n_image < 0 || n_text < 1 ||
            (params != nullptr && (token == nullptr || logprob == nullptr)) || (logits != nullptr && n_logits != ctx->model->n_vocab)) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "a context, image embeddings, at least one text token and outputs are required");
        }
        int32_t status = check_seq(ctx, seq);
        if (status != PALI_OK) return status;
        const pali::quiet_when_aborted quiet(ctx->abort);
        status = pali::check_prefix(ctx, n_image + n_text);
        if (status != PALI_OK) return status;
        release(ctx, seq);
        // A whole-context call (pali_context_prefill, beams) left cells in sequences we now share the cache with.
        if (!pali::sequences_active(ctx)) {
            llama_memory_clear(llama_get_memory(ctx->lctx), true);
            ctx->n_past = 0;
        }
        pali_sequence & s = ctx->seqs[(size_t) seq];
        s.active = true;
        status = pali::decode_prefix(ctx, seq, image_embd, n_image, text_ids, n_text);
        if (status != PALI_OK) {
            release(ctx, seq);
            return status;
        }
        s.n_past = n_image + n_text;
        if (params == nullptr) {
            if (logits != nullptr) {
                const float * row = llama_get_logits_ith(ctx->lctx, -1);
                std::copy(row, row + ctx->model->n_vocab, logits);
            }
            return PALI_OK;
        }
        if (params->max_tokens < 1) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "max_tokens must be at least 1");
        if (!pali::is_plain_greedy(*params)) s.sampler = pali::make_sampler(*params, ctx->model->n_vocab);
        return sample(ctx, s, -1, token, logprob);
    });
}

int32_t pali_context_seq_step(pali_context * ctx, int32_t n, const int32_t * seqs, const int32_t * tokens, int32_t * out_tokens,
                              float * out_logprobs) {
    return pali::guard("pali_context_seq_step", [&]() -> int32_t {
        if (ctx == nullptr || n < 1 || seqs == nullptr || tokens == nullptr || out_tokens == nullptr || out_logprobs == nullptr) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "a context, at least one sequence and outputs are required");
        }
        const pali::quiet_when_aborted quiet(ctx->abort);
        std::vector<bool> seen(ctx->seqs.size(), false);
        for (int32_t i = 0; i < n; i++) {
            int32_t status = check_seq(ctx, seqs[i]);
            if (status != PALI_OK) return status;
            const pali_sequence & s = ctx->seqs[(size_t) seqs[i]];
            if (!s.active || s.n_past == 0) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "sequence " + std::to_string(seqs[i]) + " has no prefix");
            if (seen[(size_t) seqs[i]]) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "sequence " + std::to_string(seqs[i]) + " is listed twice");
            seen[(size_t) seqs[i]] = true;
            if (tokens[i] < 0 || tokens[i] >= ctx->model->n_vocab) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "token outside the vocabulary");
            if (s.n_past + 1 >= ctx->n_ctx) return pali::fail(PALI_ERR_CONTEXT_OVERFLOW, "the answer reached the end of the context");
        }
        llama_batch batch = llama_batch_init(n, 0, 1);
        batch.n_tokens = n;
        for (int32_t i = 0; i < n; i++) {
            batch.token[i] = tokens[i];
            batch.pos[i] = ctx->seqs[(size_t) seqs[i]].n_past + 1;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = seqs[i];
            batch.logits[i] = 1;
        }
        const int32_t ret = llama_decode(ctx->lctx, batch);
        llama_batch_free(batch);
        int32_t status = pali::decode_status(ret, ctx);
        if (status != PALI_OK) return status;
        for (int32_t i = 0; i < n; i++) ctx->seqs[(size_t) seqs[i]].n_past++;
        // Each row's argmax and log-softmax over the vocabulary (~0.4 ms for PaliGemma's 257k) while the
        // decode threads idle: 3.5% of an 8-sequence step on 2 cores when done in turn. Rows with a sampler
        // (its chain holds state) stay on this thread.
        std::vector<int32_t> statuses((size_t) n, PALI_OK);
        auto rows = [&](int32_t first, int32_t step, bool samplers) {
            for (int32_t i = first; i < n; i += step) {
                pali_sequence & s = ctx->seqs[(size_t) seqs[i]];
                if ((s.sampler != nullptr) == samplers) statuses[(size_t) i] = sample(ctx, s, i, &out_tokens[i], &out_logprobs[i]);
            }
        };
        const int32_t helpers = std::min(n, ctx->n_threads) - 1;
        std::vector<std::thread> threads;
        for (int32_t h = 1; h <= helpers; h++) threads.emplace_back(rows, h, helpers + 1, false);
        rows(0, helpers + 1, false);
        for (std::thread & t : threads) t.join();
        rows(0, 1, true);
        for (int32_t st : statuses) {
            if (st != PALI_OK) return st;
        }
        return PALI_OK;
    });
}

int32_t pali_context_seq_score(pali_context * ctx, int32_t seq, const int32_t * suffix, int32_t n, float * logprobs) {
    return pali::guard("pali_context_seq_score", [&]() -> int32_t {
        if (ctx == nullptr || suffix == nullptr || logprobs == nullptr || n < 1) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "a context, a non-empty suffix and room for its log-probabilities are required");
        }
        int32_t status = check_seq(ctx, seq);
        if (status != PALI_OK) return status;
        const pali::quiet_when_aborted quiet(ctx->abort);
        pali_sequence & s = ctx->seqs[(size_t) seq];
        if (!s.active || s.n_past == 0) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "run the sequence's prefix first");
        return pali::score_suffix(ctx, seq, s.n_past, suffix, n, logprobs);
    });
}

void pali_context_seq_release(pali_context * ctx, int32_t seq) {
    if (ctx == nullptr || seq < 0 || seq >= (int32_t) ctx->seqs.size()) return;
    release(ctx, seq);
}

} // extern "C"
