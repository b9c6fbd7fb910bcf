// PaliGemma's prefix-LM on libllama: [image embeddings][<bos>][prompt]["\n"] as ONE non-causal batch of
// embeddings (libllama takes either tokens or embeddings, and the whole prefix must attend to itself),
// then causal decoding token by token, or teacher-forced scoring of a suffix.
#include "../core/internal.h"
#include "prefix_lm.h"
#include "../model/gemm_backend.h"

#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

constexpr int32_t MAX_OUTPUTS = 32;

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

bool abort_callback(void * data) { return static_cast<pali_context *>(data)->abort.load(); }

// exp(x) for x <= 0: 2^k · p(r) with r = x − k·ln 2 in [−ln 2/2, ln 2/2] and a degree-7 polynomial (relative
// error below 1e-7, below float's own rounding). Branch-free, so that the loop below vectorizes: std::exp over
// 257k logits cost ~3 ms a token, ~5% of a 3B decode step on 2 cores.
inline float exp_nonpositive(float x) {
    x = std::max(x, -87.0f);                                          // exp(−87) ≈ 1.6e-38: below it, 0 changes nothing
    const float k = (x * 1.44269504f + 12582912.0f) - 12582912.0f;   // round(x / ln 2) by the 1.5·2^23 trick
    const float r = x - k * 0.693145751953125f - k * 1.428606765330187e-06f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t) k + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

} // namespace

namespace pali {

// log(softmax(logits))[token], over the full vocabulary. Blocks of 1024 are summed in 16 float lanes, the
// blocks in double: the sum stays within 1e-7 of a double-precision one.
float token_logprob(const float * logits, int32_t n_vocab, int32_t token) {
    float max = logits[0];
    for (int32_t i = 1; i < n_vocab; i++) max = std::max(max, logits[i]);
    constexpr int32_t W = 16, BLOCK = 1024;
    double sum = 0.0;
    int32_t i = 0;
    for (; i + BLOCK <= n_vocab; i += BLOCK) {
        float lanes[W] = { 0.0f };
        for (int32_t j = i; j < i + BLOCK; j += W) {
            for (int32_t k = 0; k < W; k++) lanes[k] += exp_nonpositive(logits[j + k] - max);
        }
        for (float v : lanes) sum += v;
    }
    for (; i < n_vocab; i++) sum += exp_nonpositive(logits[i] - max);
    return (float) ((double) logits[token] - max - std::log(sum));
}

llama_sampler * make_sampler(const pali_generate_params & params, int32_t n_vocab) {
    llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
    if (params.repeat_penalty != 1.0f) {
        llama_sampler_chain_add(chain, llama_sampler_init_penalties(n_vocab, params.repeat_last_n, params.repeat_penalty, 0.0f, 0.0f));
    }
    if (params.temperature <= 0.0f) {
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());
    } else {
        if (params.top_k > 0) llama_sampler_chain_add(chain, llama_sampler_init_top_k(params.top_k));
        if (params.top_p < 1.0f) llama_sampler_chain_add(chain, llama_sampler_init_top_p(params.top_p, 1));
        if (params.min_p > 0.0f) llama_sampler_chain_add(chain, llama_sampler_init_min_p(params.min_p, 1));
        llama_sampler_chain_add(chain, llama_sampler_init_temp(params.temperature));
        llama_sampler_chain_add(chain, llama_sampler_init_dist(params.seed));
    }
    return chain;
}

bool is_plain_greedy(const pali_generate_params & params) { return params.temperature <= 0.0f && params.repeat_penalty == 1.0f; }

int32_t argmax(const float * logits, int32_t n_vocab) {
    // The first maximal index, as torch.argmax does on CPU; a plain scan skips the sampler's candidate array
    // (257k entries a token).
    int32_t token = 0;
    for (int32_t t = 1; t < n_vocab; t++) token = logits[t] > logits[token] ? t : token;
    return token;
}

int32_t decode_prefix(pali_context * ctx, llama_seq_id seq, const float * image_embd, int32_t n_image, const int32_t * text_ids, int32_t n_text) {
    const int32_t d = ctx->model->n_embd;
    const int32_t n = n_image + n_text;
    llama_batch batch = llama_batch_init(n, d, 1);
    batch.n_tokens = n;
    // libllama's Gemma graphs multiply every input row by sqrt(D). Text rows are the token embeddings,
    // which HF scales the same way; image rows enter HF's decoder unscaled, so divide them first.
    const float inv_scale = 1.0f / std::sqrt((float) d);
    for (int32_t i = 0; i < n_image; i++) {
        for (int32_t j = 0; j < d; j++) batch.embd[(size_t) i * d + j] = image_embd[(size_t) i * d + j] * inv_scale;
    }
    int32_t status = read_token_embeddings(*ctx->model, text_ids, n_text, batch.embd + (size_t) n_image * d);
    if (status != PALI_OK) {
        llama_batch_free(batch);
        return status;
    }
    for (int32_t i = 0; i < n; i++) {
        batch.pos[i] = i + 1;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = seq;
        batch.logits[i] = i == n - 1;
    }
    llama_set_causal_attn(ctx->lctx, false);
    const int32_t ret = llama_decode(ctx->lctx, batch);
    llama_set_causal_attn(ctx->lctx, true);
    llama_batch_free(batch);
    return decode_status(ret, ctx);
}

int32_t score_suffix(pali_context * ctx, llama_seq_id seq, int32_t & n_past, const int32_t * suffix, int32_t n, float * logprobs) {
    const int32_t n_vocab = ctx->model->n_vocab;
    if (n_past + n + 1 > ctx->n_ctx) return fail(PALI_ERR_CONTEXT_OVERFLOW, "the suffix does not fit in the context");
    for (int32_t i = 0; i < n; i++) {
        if (suffix[i] < 0 || suffix[i] >= n_vocab) return fail(PALI_ERR_INVALID_ARGUMENT, "suffix token outside the vocabulary");
    }
    // The prefix's last logits predict the first suffix token.
    logprobs[0] = token_logprob(llama_get_logits_ith(ctx->lctx, -1), n_vocab, suffix[0]);
    // The rest as causal batches of at most MAX_OUTPUTS tokens (all but the last suffix token are inputs).
    for (int32_t start = 0; start < n - 1; start += MAX_OUTPUTS) {
        const int32_t count = std::min(MAX_OUTPUTS, n - 1 - start);
        llama_batch batch = llama_batch_init(count, 0, 1);
        batch.n_tokens = count;
        for (int32_t i = 0; i < count; i++) {
            batch.token[i] = suffix[start + i];
            batch.pos[i] = n_past + 1 + i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = seq;
            batch.logits[i] = 1;
        }
        const int32_t ret = llama_decode(ctx->lctx, batch);
        llama_batch_free(batch);
        const int32_t status = decode_status(ret, ctx);
        if (status != PALI_OK) return status;
        n_past += count;
        for (int32_t i = 0; i < count; i++) {
            logprobs[start + i + 1] = token_logprob(llama_get_logits_ith(ctx->lctx, i), n_vocab, suffix[start + i + 1]);
        }
    }
    return PALI_OK;
}

int32_t check_prefix(const pali_context * ctx, int32_t n) {
    // + 1: positions start at 1, and the first answer token needs a slot
    if (n + 2 > ctx->n_ctx) {
        return fail(PALI_ERR_CONTEXT_OVERFLOW, "the prompt needs " + std::to_string(n) + " positions but the context holds " + std::to_string(ctx->n_ctx));
    }
    if (n > ctx->n_ubatch) {
        return fail(PALI_ERR_CONTEXT_OVERFLOW, "the image and prompt take " + std::to_string(n) + " tokens but this context runs prefixes of at most " +
                                                   std::to_string(ctx->n_ubatch));
    }
    return PALI_OK;
}

} // namespace pali

namespace {

// Without a thread pool of its own, ggml's CPU backend starts its worker threads for every graph and they
// sleep between graphs; a persistent pool whose threads poll briefly for the next graph (llama.cpp's own
// default, poll 50) decodes about 10% faster on the CPU. Found through the CPU backend's registry, as the
// CPU backend may be a dynamically loaded variant; without it libllama's default stays.
void attach_cpu_threadpool(pali_context * ctx, int32_t threads) {
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    ggml_backend_reg_t reg = cpu != nullptr ? ggml_backend_dev_backend_reg(cpu) : nullptr;
    if (reg == nullptr) return;
    auto * make = (decltype(ggml_threadpool_new) *) ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
    auto * release = (decltype(ggml_threadpool_free) *) ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free");
    if (make == nullptr || release == nullptr) return;
    ggml_threadpool_params tpp = ggml_threadpool_params_default(threads);
    tpp.poll = 50;
    ctx->threadpool = make(&tpp);
    if (ctx->threadpool == nullptr) return;
    ctx->threadpool_free = release;
    // Where pali's product backend takes the prefill's matrix products (gemm_backend.h), CPU threads that poll
    // between its graph splits take the cores its threads need (measured: half its rate). The prefill gets a pool
    // that sleeps at once; libllama switches pools by batch size and pauses the other.
    if (pali::gemm_backend_registered()) {
        tpp.poll = 0;
        ctx->threadpool_batch = make(&tpp);
    }
    llama_attach_threadpool(ctx->lctx, ctx->threadpool, ctx->threadpool_batch);
}

// One token at the next position, causally; logits requested for it.
int32_t decode_token(pali_context * ctx, int32_t token) {
    if (ctx->n_past + 1 >= ctx->n_ctx) return pali::fail(PALI_ERR_CONTEXT_OVERFLOW, "the answer reached the end of the context");
    llama_batch batch = llama_batch_init(1, 0, 1);
    batch.n_tokens = 1;
    batch.token[0] = token;
    batch.pos[0] = ctx->n_past + 1;
    batch.n_seq_id[0] = 1;
    batch.seq_id[0][0] = 0;
    batch.logits[0] = 1;
    const int32_t ret = llama_decode(ctx->lctx, batch);
    llama_batch_free(batch);
    if (ret == 0) ctx->n_past++;
    return pali::decode_status(ret, ctx);
}

} // namespace

namespace pali {

int32_t decode_status(int32_t ret, pali_context * ctx) {
    if (ret == 0) return PALI_OK;
    if (ret == 2 || ctx->abort.load()) return fail(PALI_ERR_ABORTED, "aborted");
    if (ret == 1) return fail(PALI_ERR_CONTEXT_OVERFLOW, "the context is full");
    return fail(PALI_ERR_BACKEND, "llama_decode failed with status " + std::to_string(ret));
}

} // namespace pali

extern "C" {

struct pali_context_params pali_context_default_params(void) {
    pali_context_params p;
    p.n_ctx = 0;
    p.n_threads = 0;
    p.flash_attn = false;
    p.kv_f32 = false;
    p.n_beams_max = 1;
    p.n_ubatch = 0;
    p.n_parallel = 1;
    return p;
}

int32_t pali_context_init(const pali_text_model * model, struct pali_context_params params, pali_context ** out) {
    return pali::guard("pali_context_init", [&]() -> int32_t {
        if (model == nullptr || out == nullptr || params.n_ctx <= 0) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "a model, out and a positive context size are required");
        }
        *out = nullptr;
        llama_context_params cp = llama_context_default_params();
        if (params.n_parallel < 1 || params.n_parallel > 256) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "n_parallel must be 1 .. 256");
        }
        // Each sequence may use n_ctx positions: the unified cache holds all of them.
        cp.n_ctx = (uint32_t) params.n_ctx * (uint32_t) params.n_parallel;
        // The prefix must be one ubatch: libllama's non-causal mask only spans the tokens of one ubatch. Compute
        // buffers scale with it, so it is sized for the longest prefix, not the whole context.
        cp.n_batch = cp.n_ubatch = (uint32_t) std::max(params.n_parallel, params.n_ubatch > 0 ? std::min(params.n_ubatch, params.n_ctx) : params.n_ctx);
        // Beams share the prefix in one unified KV cache; each beam needs two sequence ids (see beam.cpp).
        cp.n_seq_max = (uint32_t) std::max(params.n_parallel, 2 * params.n_beams_max);
        // libllama sizes the logits buffer for this many rows of n_vocab floats (257216 for PaliGemma):
        // n_batch rows would cost gigabytes. Generation needs one row per beam; scoring runs in chunks.
        cp.n_outputs_max = (uint32_t) std::max({ MAX_OUTPUTS, params.n_beams_max, params.n_parallel });
        cp.kv_unified = true;
        const int32_t threads = params.n_threads > 0 ? params.n_threads : pali_default_threads();
        cp.n_threads = cp.n_threads_batch = threads;
        cp.flash_attn_type = params.flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
        cp.type_k = cp.type_v = params.kv_f32 ? GGML_TYPE_F32 : GGML_TYPE_F16;
        cp.no_perf = true;
        auto * ctx = new pali_context();
        ctx->model = model;
        ctx->n_ctx = params.n_ctx;
        ctx->n_seq_max = (int32_t) cp.n_seq_max;
        ctx->seqs.resize((size_t) params.n_parallel);
        ctx->n_threads = threads;
        ctx->n_ubatch = (int32_t) cp.n_ubatch;
        ctx->lctx = llama_init_from_model(model->model, cp);
        if (ctx->lctx == nullptr) {
            delete ctx;
            return pali::fail(PALI_ERR_OUT_OF_MEMORY, "libllama could not create a context of " + std::to_string(params.n_ctx) + " tokens");
        }
        llama_set_abort_callback(ctx->lctx, abort_callback, ctx);
        attach_cpu_threadpool(ctx, threads);
        *out = ctx;
        return PALI_OK;
    });
}

void pali_context_free(pali_context * ctx) {
    if (ctx == nullptr) return;
    for (pali_sequence & s : ctx->seqs) llama_sampler_free(s.sampler);
    llama_free(ctx->lctx);
    if (ctx->threadpool != nullptr) ctx->threadpool_free(ctx->threadpool);
    if (ctx->threadpool_batch != nullptr) ctx->threadpool_free(ctx->threadpool_batch);
    delete ctx;
}

void pali_context_abort(pali_context * ctx, bool abort) {
    if (ctx != nullptr) ctx->abort.store(abort);
}

int32_t pali_context_prefill(pali_context * ctx, const float * image_embd, int32_t n_image, const int32_t * text_ids, int32_t n_text) {
    return pali::guard("pali_context_prefill", [&]() -> int32_t {
        if (ctx == nullptr || (n_image > 0 && image_embd == nullptr) || (n_text > 0 && text_ids == nullptr) || n_image < 0 || n_text < 1) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "a context, image embeddings and at least one text token are required");
        }
        const pali::quiet_when_aborted quiet(ctx->abort);
        const int32_t n = n_image + n_text;
        int32_t status = pali::check_prefix(ctx, n);
        if (status != PALI_OK) return status;
        if (pali::sequences_active(ctx)) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "sequences are in use: release them first");
        const auto t0 = clock_type::now();
        llama_memory_clear(llama_get_memory(ctx->lctx), true);
        ctx->n_past = 0;
        ctx->timings = {};
        status = pali::decode_prefix(ctx, 0, image_embd, n_image, text_ids, n_text);
        if (status != PALI_OK) return status;
        ctx->n_past = n;
        ctx->timings.prefill_ms = ms_since(t0);
        ctx->timings.n_prefill = n;
        return PALI_OK;
    });
}

int32_t pali_context_logits(pali_context * ctx, float * out, int32_t n_vocab) {
    if (ctx == nullptr || out == nullptr || n_vocab != ctx->model->n_vocab) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "logits buffer must hold n_vocab floats");
    const float * logits = llama_get_logits_ith(ctx->lctx, -1);
    if (logits == nullptr) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "no logits: run the prefix first");
    std::copy(logits, logits + n_vocab, out);
    return PALI_OK;
}

struct pali_generate_params pali_generate_default_params(void) {
    pali_generate_params p{};
    p.max_tokens = 32;
    p.temperature = 0.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.seed = 0;
    return p;
}

int32_t pali_context_generate(pali_context * ctx, const struct pali_generate_params * params, pali_token_callback callback,
                              void * user_data, int32_t * finish_reason) {
    return pali::guard("pali_context_generate", [&]() -> int32_t {
        if (ctx == nullptr || params == nullptr || finish_reason == nullptr || params->max_tokens < 1) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "a context, parameters with max_tokens >= 1 and finish_reason are required");
        }
        const pali::quiet_when_aborted quiet(ctx->abort);
        if (ctx->n_past == 0) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "run the prefix first");
        const int32_t n_vocab = ctx->model->n_vocab;
        llama_sampler * chain = pali::make_sampler(*params, n_vocab);
        const bool greedy = pali::is_plain_greedy(*params);
        const auto t0 = clock_type::now();
        int32_t status = PALI_OK;
        *finish_reason = PALI_FINISH_LENGTH;
        const llama_vocab * vocab = llama_model_get_vocab(ctx->model->model);
        const int32_t eos = llama_vocab_eos(vocab);
        for (int32_t i = 0; i < params->max_tokens; i++) {
            if (ctx->abort.load()) {
                *finish_reason = PALI_FINISH_ABORTED;
                break;
            }
            const float * logits = llama_get_logits_ith(ctx->lctx, -1);
            const int32_t token = greedy ? pali::argmax(logits, n_vocab) : llama_sampler_sample(chain, ctx->lctx, -1);
            const float logprob = pali::token_logprob(logits, n_vocab, token);
            ctx->timings.n_decoded++;
            const bool is_stop = token == eos;
            if (callback != nullptr && !callback(token, logprob, user_data)) {
                *finish_reason = PALI_FINISH_ABORTED;
                break;
            }
            if (is_stop) {
                *finish_reason = token == eos ? PALI_FINISH_EOS : PALI_FINISH_STOP;
                break;
            }
            if (i + 1 == params->max_tokens) break;
            status = decode_token(ctx, token);
            if (status == PALI_ERR_ABORTED) {
                status = PALI_OK;
                *finish_reason = PALI_FINISH_ABORTED;
                break;
            }
            if (status != PALI_OK) break;
        }
        llama_sampler_free(chain);
        ctx->timings.decode_ms = ms_since(t0);
        return status;
    });
}

int32_t pali_context_score(pali_context * ctx, const int32_t * suffix, int32_t n, float * logprobs) {
    return pali::guard("pali_context_score", [&]() -> int32_t {
        if (ctx == nullptr || suffix == nullptr || logprobs == nullptr || n < 1) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "a context, a non-empty suffix and room for its log-probabilities are required");
        }
        const pali::quiet_when_aborted quiet(ctx->abort);
        if (ctx->n_past == 0) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "run the prefix first");
        return pali::score_suffix(ctx, 0, ctx->n_past, suffix, n, logprobs);
    });
}

struct pali_timings pali_context_timings(const pali_context * ctx) { return ctx ? ctx->timings : pali_timings{}; }

} // extern "C"
