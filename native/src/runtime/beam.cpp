// Beam search after the prefix, as transformers' generate(num_beams=B, length_penalty=lp, early_stopping=False)
// does it: cumulative log-probabilities, the best 2B continuations each step, a hypothesis finishes at <eos>
// (kept only if it ranks within the first B), scored sum / generated_length^lp; done when B hypotheses are
// finished and the best running beam, normalized by its current length, cannot beat the worst of them.
//
// Beams share the prefix in libllama's unified KV cache: copying a sequence only tags cells, no data moves.
// Two banks of B sequence ids alternate, so a step's parents are never overwritten by their children.
#include "../core/internal.h"
#include "prefix_lm.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

struct beam {
    llama_seq_id         seq = 0;
    std::vector<int32_t> tokens;
    std::vector<float>   logprobs;
    double               score = 0.0; // sum of log-probabilities
    int32_t              row = 0;     // logits row of its last decode
};

struct hypothesis {
    std::vector<int32_t> tokens;
    std::vector<float>   logprobs;
    double               score; // normalized
};

struct candidate {
    double  score;
    int32_t parent;
    int32_t token;
    float   logprob;
};

void log_softmax(const float * logits, int32_t n, std::vector<float> & out) {
    out.resize(n);
    float max = logits[0];
    for (int32_t i = 1; i < n; i++) max = std::max(max, logits[i]);
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) sum += std::exp((double) logits[i] - max);
    const double lse = max + std::log(sum);
    for (int32_t i = 0; i < n; i++) out[i] = (float) (logits[i] - lse);
}

} // namespace

extern "C" int32_t pali_context_beam_search(pali_context * ctx, int32_t n_beams, float length_penalty, int32_t max_tokens,
                                            int32_t * out_tokens, float * out_logprobs, int32_t * n_out, int32_t * finish_reason) {
    return pali::guard("pali_context_beam_search", [&]() -> int32_t {
        if (ctx == nullptr || out_tokens == nullptr || out_logprobs == nullptr || n_out == nullptr || finish_reason == nullptr ||
            n_beams < 1 || max_tokens < 1 || !std::isfinite(length_penalty)) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "a context, n_beams >= 1, max_tokens >= 1 and output buffers are required");
        }
        const pali::quiet_when_aborted quiet(ctx->abort);
        if (n_beams > 1 && 2 * n_beams > ctx->n_seq_max) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "this context was made for at most " + std::to_string(ctx->n_seq_max / 2) + " beams");
        }
        if (ctx->n_past == 0) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "run the prefix first");
        llama_context * lctx = ctx->lctx;
        llama_memory_t mem = llama_get_memory(lctx);
        const int32_t n_vocab = ctx->model->n_vocab;
        const int32_t eos = llama_vocab_eos(llama_model_get_vocab(ctx->model->model));
        const int32_t n_prefix = ctx->n_past;
        if (n_prefix + 1 + (int64_t) n_beams * max_tokens > ctx->n_ctx) {
            return pali::fail(PALI_ERR_CONTEXT_OVERFLOW, "the beams need " + std::to_string(n_prefix + 1 + (int64_t) n_beams * max_tokens) +
                                                             " positions in the cache but the context holds " + std::to_string(ctx->n_ctx));
        }

        std::vector<beam> running(1);
        running[0].seq = 0;
        running[0].row = -1;
        std::vector<hypothesis> finished;
        std::vector<float> lp;
        int32_t status = PALI_OK;
        bool done = false;
        *finish_reason = PALI_FINISH_LENGTH;

        for (int32_t step = 0; step < max_tokens && !done; step++) {
            if (ctx->abort.load()) {
                *finish_reason = PALI_FINISH_ABORTED;
                break;
            }
            // The best 2B continuations over all beams.
            std::vector<candidate> cands;
            for (int32_t b = 0; b < (int32_t) running.size(); b++) {
                log_softmax(llama_get_logits_ith(lctx, running[b].row), n_vocab, lp);
                std::vector<int32_t> idx(n_vocab);
                for (int32_t i = 0; i < n_vocab; i++) idx[i] = i;
                const int32_t k = std::min<int32_t>(2 * n_beams, n_vocab);
                std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t c) { return lp[a] > lp[c] || (lp[a] == lp[c] && a < c); });
                for (int32_t i = 0; i < k; i++) cands.push_back({ running[b].score + lp[idx[i]], b, idx[i], lp[idx[i]] });
            }
            std::stable_sort(cands.begin(), cands.end(), [](const candidate & a, const candidate & c) { return a.score > c.score; });
            cands.resize(std::min<size_t>(cands.size(), 2 * n_beams));

            std::vector<beam> next;
            for (int32_t rank = 0; rank < (int32_t) cands.size() && (int32_t) next.size() < n_beams; rank++) {
                const candidate & c = cands[rank];
                const beam & parent = running[c.parent];
                if (c.token == eos) {
                    if (rank >= n_beams) continue;
                    hypothesis h{ parent.tokens, parent.logprobs, 0.0 };
                    h.tokens.push_back(c.token);
                    h.logprobs.push_back(c.logprob);
                    h.score = c.score / std::pow((double) h.tokens.size(), (double) length_penalty);
                    finished.push_back(std::move(h));
                    continue;
                }
                beam nb = parent;
                nb.tokens.push_back(c.token);
                nb.logprobs.push_back(c.logprob);
                nb.score = c.score;
                next.push_back(std::move(nb));
            }
            // Keep the best B finished hypotheses.
            std::stable_sort(finished.begin(), finished.end(), [](const hypothesis & a, const hypothesis & c) { return a.score > c.score; });
            if ((int32_t) finished.size() > n_beams) finished.resize(n_beams);
            if ((int32_t) finished.size() == n_beams) {
                const double best_running = next.empty() ? -INFINITY : next[0].score / std::pow((double) (step + 1), (double) length_penalty);
                done = finished.back().score >= best_running;
            }
            if (next.empty()) done = true;
            if (done || step + 1 == max_tokens) {
                running = std::move(next);
                break;
            }
            // Children take the other bank of sequence ids; then the parents' sequences are dropped.
            const llama_seq_id base = (step % 2 == 0) ? n_beams : 0;
            for (int32_t j = 0; j < (int32_t) next.size(); j++) {
                llama_memory_seq_rm(mem, base + j, -1, -1);
                llama_memory_seq_cp(mem, next[j].seq, base + j, -1, -1);
            }
            for (const beam & b : running) {
                bool still = false;
                for (int32_t j = 0; j < (int32_t) next.size(); j++) still |= b.seq == base + j;
                if (!still) llama_memory_seq_rm(mem, b.seq, -1, -1);
            }
            llama_batch batch = llama_batch_init((int32_t) next.size(), 0, 1);
            batch.n_tokens = (int32_t) next.size();
            for (int32_t j = 0; j < (int32_t) next.size(); j++) {
                next[j].seq = base + j;
                next[j].row = j;
                batch.token[j] = next[j].tokens.back();
                batch.pos[j] = n_prefix + step + 1;
                batch.n_seq_id[j] = 1;
                batch.seq_id[j][0] = next[j].seq;
                batch.logits[j] = 1;
            }
            const int32_t ret = llama_decode(lctx, batch);
            llama_batch_free(batch);
            if (ret != 0) {
                status = pali::decode_status(ret, ctx);
                if (status == PALI_ERR_ABORTED) {
                    status = PALI_OK;
                    *finish_reason = PALI_FINISH_ABORTED;
                }
                break;
            }
            running = std::move(next);
        }
        if (status != PALI_OK) return status;
        // Beams still running at the end are hypotheses too.
        for (const beam & b : running) {
            if (b.tokens.empty()) continue;
            finished.push_back({ b.tokens, b.logprobs, b.score / std::pow((double) b.tokens.size(), (double) length_penalty) });
        }
        std::stable_sort(finished.begin(), finished.end(), [](const hypothesis & a, const hypothesis & c) { return a.score > c.score; });
        // The cache now holds beam sequences: the next request must start with a new prefix.
        ctx->n_past = 0;
        if (finished.empty()) {
            *n_out = 0;
            return PALI_OK;
        }
        const hypothesis & best = finished[0];
        const int32_t n = std::min<int32_t>((int32_t) best.tokens.size(), max_tokens);
        std::copy(best.tokens.begin(), best.tokens.begin() + n, out_tokens);
        std::copy(best.logprobs.begin(), best.logprobs.begin() + n, out_logprobs);
        *n_out = n;
        if (*finish_reason != PALI_FINISH_ABORTED) *finish_reason = best.tokens.back() == eos ? PALI_FINISH_EOS : PALI_FINISH_LENGTH;
        return PALI_OK;
    });
}
