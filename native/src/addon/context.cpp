// Context: a prefix-LM request state over a TextModel. Every slow call runs on a worker thread; generated
// tokens stream to JS through a thread-safe function while the loop runs in C++.
#include "common.h"

#include <memory>
#include <string>
#include <vector>

struct pali_text_model;

namespace pali_addon {

pali_text_model * unwrap_text_model(Napi::Value value);

namespace {

struct TokenEvent { int32_t token; float logprob; };

class Context : public Napi::ObjectWrap<Context> {
  public:
    static Napi::FunctionReference constructor;

    static void Init(Napi::Env env, Napi::Object exports) {
        Napi::Function fn = DefineClass(env, "Context", {
            StaticMethod("create", &Context::Create),
            InstanceMethod("prefill", &Context::Prefill),
            InstanceMethod("logits", &Context::Logits),
            InstanceMethod("generate", &Context::Generate),
            InstanceMethod("score", &Context::Score),
            InstanceMethod("beamSearch", &Context::BeamSearch),
            InstanceMethod("seqPrefill", &Context::SeqPrefill),
            InstanceMethod("seqStep", &Context::SeqStep),
            InstanceMethod("seqScore", &Context::SeqScore),
            InstanceMethod("seqRelease", &Context::SeqRelease),
            InstanceMethod("setLoras", &Context::SetLoras),
            InstanceMethod("abort", &Context::Abort),
            InstanceMethod("timings", &Context::Timings),
            InstanceMethod("dispose", &Context::Dispose),
        });
        constructor = Napi::Persistent(fn);
        exports.Set("Context", fn);
    }

    explicit Context(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Context>(info) {
        if (info.Length() > 1 && info[0].IsExternal()) {
            ctx_ = info[0].As<Napi::External<pali_context>>().Data();
            model_ref_ = Napi::Persistent(info[1]); // the model outlives its contexts
            lease_ = lease_text_model(info[1]);
        }
    }

    ~Context() override {
        pali_context_free(ctx_);
        release_text_model(lease_);
    }

  private:
    pali_context *              ctx_ = nullptr;
    Napi::Reference<Napi::Value> model_ref_;
    text_model_lease *           lease_ = nullptr;

    pali_context * live(Napi::Env env) {
        if (ctx_ == nullptr) throw status_error(env, PALI_ERR_DISPOSED, "the context was disposed");
        return ctx_;
    }

    // create(textModel, { nCtx, threads, flashAttn, kvF32 }) -> Promise<Context>
    static Napi::Value Create(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_text_model * model = unwrap_text_model(info[0]);
        if (model == nullptr) throw status_error(env, PALI_ERR_DISPOSED, "the text model was disposed");
        Napi::Object o = info[1].As<Napi::Object>();
        pali_context_params p = pali_context_default_params();
        p.n_ctx = o.Get("nCtx").As<Napi::Number>().Int32Value();
        p.n_threads = o.Get("threads").As<Napi::Number>().Int32Value();
        p.flash_attn = o.Get("flashAttn").As<Napi::Boolean>().Value();
        p.kv_f32 = o.Get("kvF32").As<Napi::Boolean>().Value();
        p.n_beams_max = o.Get("beamsMax").As<Napi::Number>().Int32Value();
        p.n_ubatch = o.Get("nUbatch").As<Napi::Number>().Int32Value();
        if (o.Has("nParallel")) p.n_parallel = o.Get("nParallel").As<Napi::Number>().Int32Value();
        auto slot = std::make_shared<pali_context *>(nullptr);
        auto model_ref = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(info[0]));
        return run_async(
            env, [model, p, slot]() { return pali_context_init(model, p, slot.get()); },
            [slot, model_ref](Napi::Env e) -> Napi::Value {
                Napi::Value handle = constructor.New({ Napi::External<pali_context>::New(e, *slot), model_ref->Value() });
                *slot = nullptr;
                return handle;
            });
    }

    // prefill(imageEmbd: Float32Array, nImage, textIds: Int32Array) -> Promise<void>
    Napi::Value Prefill(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_context * ctx = live(env);
        Napi::Float32Array embd = info[0].As<Napi::Float32Array>();
        int32_t n_image = info[1].As<Napi::Number>().Int32Value();
        Napi::Int32Array ids = info[2].As<Napi::Int32Array>();
        auto keep = std::make_shared<std::vector<Napi::Reference<Napi::Value>>>();
        keep->push_back(Napi::Persistent(info[0]));
        keep->push_back(Napi::Persistent(info[2]));
        keep->push_back(Napi::Persistent(info.This()));
        const float * e = embd.Data();
        const int32_t * t = ids.Data();
        int32_t n_text = (int32_t) ids.ElementLength();
        return run_async(env, [=]() { return pali_context_prefill(ctx, e, n_image, t, n_text); },
                         [keep](Napi::Env en) { return en.Undefined(); });
    }

    // logits(out: Float32Array) -> void
    Napi::Value Logits(const Napi::CallbackInfo & info) {
        Napi::Float32Array out = info[0].As<Napi::Float32Array>();
        int32_t status = pali_context_logits(live(info.Env()), out.Data(), (int32_t) out.ElementLength());
        if (status != PALI_OK) throw status_error(info.Env(), status, pali_last_error());
        return info.Env().Undefined();
    }

    // generate({ maxTokens, temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed }, onToken)
    //   -> Promise<{ tokens: Int32Array, logprobs: Float32Array, finishReason: number }>
    Napi::Value Generate(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_context * ctx = live(env);
        Napi::Object o = info[0].As<Napi::Object>();
        auto state = std::make_shared<GenerateState>();
        state->params = generate_params(o);
        if (info.Length() > 1 && info[1].IsFunction()) {
            state->tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "pali-tokens", 0, 1);
            state->has_tsfn = true;
        }
        auto self = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(info.This()));
        return run_async(
            env,
            [ctx, state]() {
                return pali_context_generate(ctx, &state->params, on_token, state.get(), &state->finish_reason);
            },
            [state, self](Napi::Env e) -> Napi::Value {
                if (state->has_tsfn) state->tsfn.Release();
                Napi::Object r = Napi::Object::New(e);
                Napi::Int32Array tokens = Napi::Int32Array::New(e, state->tokens.size());
                Napi::Float32Array logprobs = Napi::Float32Array::New(e, state->logprobs.size());
                std::copy(state->tokens.begin(), state->tokens.end(), tokens.Data());
                std::copy(state->logprobs.begin(), state->logprobs.end(), logprobs.Data());
                r.Set("tokens", tokens);
                r.Set("logprobs", logprobs);
                r.Set("finishReason", state->finish_reason);
                return r;
            });
    }

    static pali_generate_params generate_params(Napi::Object o) {
        pali_generate_params p = pali_generate_default_params();
        p.max_tokens = o.Get("maxTokens").As<Napi::Number>().Int32Value();
        p.temperature = o.Get("temperature").As<Napi::Number>().FloatValue();
        p.top_k = o.Get("topK").As<Napi::Number>().Int32Value();
        p.top_p = o.Get("topP").As<Napi::Number>().FloatValue();
        p.min_p = o.Get("minP").As<Napi::Number>().FloatValue();
        p.repeat_penalty = o.Get("repeatPenalty").As<Napi::Number>().FloatValue();
        p.repeat_last_n = o.Get("repeatLastN").As<Napi::Number>().Int32Value();
        p.seed = o.Get("seed").As<Napi::Number>().Uint32Value();
        return p;
    }

    // seqPrefill(seq, imageEmbd, nImage, textIds, params | null, logitsOut | null) -> Promise<{ token, logprob } | undefined>
    Napi::Value SeqPrefill(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_context * ctx = live(env);
        const int32_t seq = info[0].As<Napi::Number>().Int32Value();
        Napi::Float32Array embd = info[1].As<Napi::Float32Array>();
        const int32_t n_image = info[2].As<Napi::Number>().Int32Value();
        Napi::Int32Array ids = info[3].As<Napi::Int32Array>();
        const bool sampling = info[4].IsObject();
        auto params = std::make_shared<pali_generate_params>(sampling ? generate_params(info[4].As<Napi::Object>()) : pali_generate_default_params());
        float * logits = nullptr;
        int32_t n_logits = 0;
        if (info[5].IsTypedArray()) {
            Napi::Float32Array out = info[5].As<Napi::Float32Array>();
            logits = out.Data();
            n_logits = (int32_t) out.ElementLength();
        }
        auto keep = std::make_shared<std::vector<Napi::Reference<Napi::Value>>>();
        for (int i : { 1, 3, 5 }) {
            if (info[i].IsObject()) keep->push_back(Napi::Persistent(info[i]));
        }
        keep->push_back(Napi::Persistent(info.This()));
        struct first { int32_t token = 0; float logprob = 0.0f; };
        auto r = std::make_shared<first>();
        const float * e = embd.Data();
        const int32_t * t = ids.Data();
        const int32_t n_text = (int32_t) ids.ElementLength();
        return run_async(
            env,
            [=]() { return pali_context_seq_prefill(ctx, seq, e, n_image, t, n_text, sampling ? params.get() : nullptr, &r->token, &r->logprob, logits, n_logits); },
            [keep, r, sampling](Napi::Env en) -> Napi::Value {
                if (!sampling) return en.Undefined();
                Napi::Object o = Napi::Object::New(en);
                o.Set("token", r->token);
                o.Set("logprob", r->logprob);
                return o;
            });
    }

    // seqStep(seqs: Int32Array, tokens: Int32Array, outTokens: Int32Array, outLogprobs: Float32Array) -> Promise<void>
    Napi::Value SeqStep(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_context * ctx = live(env);
        Napi::Int32Array seqs = info[0].As<Napi::Int32Array>();
        Napi::Int32Array tokens = info[1].As<Napi::Int32Array>();
        Napi::Int32Array out_tokens = info[2].As<Napi::Int32Array>();
        Napi::Float32Array out_logprobs = info[3].As<Napi::Float32Array>();
        const int32_t n = (int32_t) seqs.ElementLength();
        if (tokens.ElementLength() != (size_t) n || out_tokens.ElementLength() < (size_t) n || out_logprobs.ElementLength() < (size_t) n) {
            throw status_error(env, PALI_ERR_INVALID_ARGUMENT, "seqs, tokens and the outputs must have the same length");
        }
        auto keep = std::make_shared<std::vector<Napi::Reference<Napi::Value>>>();
        for (int i = 0; i < 4; i++) keep->push_back(Napi::Persistent(info[i]));
        keep->push_back(Napi::Persistent(info.This()));
        const int32_t * s = seqs.Data();
        const int32_t * t = tokens.Data();
        int32_t * ot = out_tokens.Data();
        float * ol = out_logprobs.Data();
        return run_async(env, [=]() { return pali_context_seq_step(ctx, n, s, t, ot, ol); }, [keep](Napi::Env e) { return e.Undefined(); });
    }

    // seqScore(seq, suffix: Int32Array, out: Float32Array) -> Promise<void>
    Napi::Value SeqScore(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_context * ctx = live(env);
        const int32_t seq = info[0].As<Napi::Number>().Int32Value();
        Napi::Int32Array suffix = info[1].As<Napi::Int32Array>();
        Napi::Float32Array out = info[2].As<Napi::Float32Array>();
        if (out.ElementLength() < suffix.ElementLength()) throw status_error(env, PALI_ERR_INVALID_ARGUMENT, "out is too small");
        auto keep = std::make_shared<std::vector<Napi::Reference<Napi::Value>>>();
        for (int i = 1; i < 3; i++) keep->push_back(Napi::Persistent(info[i]));
        keep->push_back(Napi::Persistent(info.This()));
        const int32_t * s = suffix.Data();
        float * o = out.Data();
        const int32_t n = (int32_t) suffix.ElementLength();
        return run_async(env, [=]() { return pali_context_seq_score(ctx, seq, s, n, o); }, [keep](Napi::Env e) { return e.Undefined(); });
    }

    // seqRelease(seq) -> void (cheap: tags cells free)
    // setLoras(indices: Int32Array, scales: Float32Array); synchronous, between native calls.
    Napi::Value SetLoras(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        Napi::Int32Array loras = info[0].As<Napi::Int32Array>();
        Napi::Float32Array scales = info[1].As<Napi::Float32Array>();
        if (loras.ElementLength() != scales.ElementLength()) throw status_error(env, PALI_ERR_INVALID_ARGUMENT, "one scale per LoRA");
        const int32_t status = pali_context_set_loras(live(env), (int32_t) loras.ElementLength(), loras.Data(), scales.Data());
        if (status != PALI_OK) throw status_error(env, status, pali_last_error());
        return env.Undefined();
    }

    Napi::Value SeqRelease(const Napi::CallbackInfo & info) {
        if (ctx_ != nullptr) pali_context_seq_release(ctx_, info[0].As<Napi::Number>().Int32Value());
        return info.Env().Undefined();
    }

    struct GenerateState {
        pali_generate_params     params{};
        std::vector<int32_t>     tokens;
        std::vector<float>       logprobs;
        int32_t                  finish_reason = PALI_FINISH_LENGTH;
        Napi::ThreadSafeFunction tsfn;
        bool                     has_tsfn = false;
    };

    static bool on_token(int32_t token, float logprob, void * user_data) {
        auto * state = static_cast<GenerateState *>(user_data);
        state->tokens.push_back(token);
        state->logprobs.push_back(logprob);
        if (state->has_tsfn) {
            auto * ev = new TokenEvent{ token, logprob };
            napi_status s = state->tsfn.NonBlockingCall(ev, [](Napi::Env env, Napi::Function fn, TokenEvent * e) {
                fn.Call({ Napi::Number::New(env, e->token), Napi::Number::New(env, e->logprob) });
                delete e;
            });
            if (s != napi_ok) delete ev;
        }
        return true;
    }

    // score(suffix: Int32Array, out: Float32Array) -> Promise<void>
    Napi::Value Score(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_context * ctx = live(env);
        Napi::Int32Array suffix = info[0].As<Napi::Int32Array>();
        Napi::Float32Array out = info[1].As<Napi::Float32Array>();
        if (out.ElementLength() < suffix.ElementLength()) throw status_error(env, PALI_ERR_INVALID_ARGUMENT, "out is too small");
        auto keep = std::make_shared<std::vector<Napi::Reference<Napi::Value>>>();
        keep->push_back(Napi::Persistent(info[0]));
        keep->push_back(Napi::Persistent(info[1]));
        keep->push_back(Napi::Persistent(info.This()));
        const int32_t * s = suffix.Data();
        float * o = out.Data();
        int32_t n = (int32_t) suffix.ElementLength();
        return run_async(env, [=]() { return pali_context_score(ctx, s, n, o); }, [keep](Napi::Env e) { return e.Undefined(); });
    }

    // beamSearch(nBeams, lengthPenalty, maxTokens) -> Promise<{ tokens, logprobs, finishReason }>
    Napi::Value BeamSearch(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_context * ctx = live(env);
        int32_t n_beams = info[0].As<Napi::Number>().Int32Value();
        float length_penalty = info[1].As<Napi::Number>().FloatValue();
        int32_t max_tokens = info[2].As<Napi::Number>().Int32Value();
        if (max_tokens < 1) throw status_error(env, PALI_ERR_INVALID_ARGUMENT, "maxTokens must be positive");
        struct result { std::vector<int32_t> tokens; std::vector<float> logprobs; int32_t n = 0; int32_t finish = 0; };
        auto r = std::make_shared<result>();
        r->tokens.resize(max_tokens);
        r->logprobs.resize(max_tokens);
        auto self = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(info.This()));
        return run_async(
            env,
            [=]() { return pali_context_beam_search(ctx, n_beams, length_penalty, max_tokens, r->tokens.data(), r->logprobs.data(), &r->n, &r->finish); },
            [r, self](Napi::Env e) -> Napi::Value {
                Napi::Object o = Napi::Object::New(e);
                Napi::Int32Array tokens = Napi::Int32Array::New(e, r->n);
                Napi::Float32Array logprobs = Napi::Float32Array::New(e, r->n);
                std::copy(r->tokens.begin(), r->tokens.begin() + r->n, tokens.Data());
                std::copy(r->logprobs.begin(), r->logprobs.begin() + r->n, logprobs.Data());
                o.Set("tokens", tokens);
                o.Set("logprobs", logprobs);
                o.Set("finishReason", r->finish);
                return o;
            });
    }

    Napi::Value Abort(const Napi::CallbackInfo & info) {
        if (ctx_ != nullptr) pali_context_abort(ctx_, info[0].As<Napi::Boolean>().Value());
        return info.Env().Undefined();
    }

    Napi::Value Timings(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_timings t = pali_context_timings(live(env));
        Napi::Object o = Napi::Object::New(env);
        o.Set("prefillMs", t.prefill_ms);
        o.Set("prefillTokens", t.n_prefill);
        o.Set("decodeMs", t.decode_ms);
        o.Set("decodedTokens", t.n_decoded);
        return o;
    }

    Napi::Value Dispose(const Napi::CallbackInfo & info) {
        pali_context_free(ctx_);
        ctx_ = nullptr;
        release_text_model(lease_);
        lease_ = nullptr;
        model_ref_.Reset();
        return info.Env().Undefined();
    }
};

Napi::FunctionReference Context::constructor;

} // namespace

void init_context(Napi::Env env, Napi::Object exports) { Context::Init(env, exports); }

} // namespace pali_addon
