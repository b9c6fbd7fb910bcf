// TextModel: a libllama-loaded decoder handle. Loading runs on a worker thread.
#include "common.h"

#include <memory>
#include <algorithm>
#include <climits>
#include <string>
#include <vector>

namespace pali_addon {
namespace {

class TextModel : public Napi::ObjectWrap<TextModel> {
  public:
    static Napi::FunctionReference constructor;

    static void Init(Napi::Env env, Napi::Object exports) {
        Napi::Function fn = DefineClass(env, "TextModel", {
            StaticMethod("load", &TextModel::Load),
            InstanceMethod("info", &TextModel::Info),
            InstanceMethod("meta", &TextModel::Meta),
            InstanceMethod("tokenize", &TextModel::Tokenize),
            InstanceMethod("addLora", &TextModel::AddLora),
            InstanceMethod("dispose", &TextModel::Dispose),
        });
        constructor = Napi::Persistent(fn);
        exports.Set("TextModel", fn);
    }

    explicit TextModel(const Napi::CallbackInfo & info) : Napi::ObjectWrap<TextModel>(info) {
        if (info.Length() > 0 && info[0].IsExternal()) {
            model_ = info[0].As<Napi::External<pali_text_model>>().Data();
        }
    }

    ~TextModel() override { pali_text_model_free(model_); }

    pali_text_model * handle() const { return disposed_ ? nullptr : model_; }

    // Contexts lease the weights: dispose() while one lives only marks the model, the last release frees it.
    void retain() { contexts_++; }
    void release() {
        if (--contexts_ == 0 && disposed_) {
            pali_text_model_free(model_);
            model_ = nullptr;
        }
    }

  private:
    pali_text_model * model_ = nullptr;
    bool              disposed_ = false;
    int               contexts_ = 0; // changed on the JS thread only

    pali_text_model * live(Napi::Env env) const {
        if (model_ == nullptr || disposed_) throw status_error(env, PALI_ERR_DISPOSED, "the text model was disposed");
        return model_;
    }

    // load(path, { gpuLayers, useMmap }) -> Promise<TextModel>
    static Napi::Value Load(const Napi::CallbackInfo & info) {
        std::string path = info[0].As<Napi::String>().Utf8Value();
        Napi::Object opts = info[1].As<Napi::Object>();
        pali_text_model_params params = pali_text_model_default_params();
        params.n_gpu_layers = opts.Get("gpuLayers").As<Napi::Number>().Int32Value();
        params.use_mmap     = opts.Get("useMmap").As<Napi::Boolean>().Value();
        auto slot = std::make_shared<pali_text_model *>(nullptr);
        return run_async(
            info.Env(),
            [path, params, slot]() { return pali_text_model_load(path.c_str(), params, slot.get()); },
            [slot](Napi::Env env) -> Napi::Value {
                Napi::Value handle = constructor.New({ Napi::External<pali_text_model>::New(env, *slot) });
                *slot = nullptr;
                return handle;
            });
    }

    Napi::Value Info(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_text_model_info mi;
        int32_t status = pali_text_model_get_info(live(env), &mi);
        if (status != PALI_OK) throw status_error(env, status, pali_last_error());
        Napi::Object o = Napi::Object::New(env);
        o.Set("description", mi.description);
        o.Set("params", Napi::Number::New(env, (double) mi.n_params));
        o.Set("sizeBytes", Napi::Number::New(env, (double) mi.size_bytes));
        o.Set("embeddingLength", mi.n_embd);
        o.Set("layers", mi.n_layer);
        o.Set("vocabSize", mi.n_vocab);
        o.Set("contextLength", mi.n_ctx_train);
        return o;
    }

    Napi::Value Meta(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        std::string key = info[0].As<Napi::String>().Utf8Value();
        std::string buf(4096, '\0');
        int32_t n = pali_text_model_meta(live(env), key.c_str(), buf.data(), buf.size());
        if (n < 0) return env.Undefined();
        if ((size_t) n >= buf.size()) {
            buf.assign((size_t) n + 1, '\0');
            n = pali_text_model_meta(live(env), key.c_str(), buf.data(), buf.size());
        }
        return Napi::String::New(env, buf.c_str(), (size_t) n);
    }

    // tokenize(text, parseSpecial) -> Int32Array; synchronous, for tests and short inputs.
    Napi::Value Tokenize(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        std::string text = info[0].As<Napi::String>().Utf8Value();
        bool parse_special = info[1].As<Napi::Boolean>().Value();
        if (text.size() > (size_t) INT32_MAX / 2) throw status_error(env, PALI_ERR_INVALID_ARGUMENT, "text too long");
        std::vector<int32_t> ids(text.size() + 16);
        int32_t n = pali_text_model_tokenize(live(env), text.data(), (int32_t) text.size(), parse_special, ids.data(), (int32_t) ids.size());
        if (n < 0 && n > -(int32_t) (text.size() * 4 + 64)) {
            ids.resize((size_t) -n);
            n = pali_text_model_tokenize(live(env), text.data(), (int32_t) text.size(), parse_special, ids.data(), (int32_t) ids.size());
        }
        if (n < 0) throw status_error(env, PALI_ERR_INVALID_ARGUMENT, pali_last_error());
        Napi::Int32Array out = Napi::Int32Array::New(env, (size_t) n);
        std::copy(ids.begin(), ids.begin() + n, out.Data());
        return out;
    }

    // addLora(path) -> Promise<number>: the adapter's index for Context.setLoras.
    Napi::Value AddLora(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_text_model * model = live(env);
        std::string path = info[0].As<Napi::String>().Utf8Value();
        auto index = std::make_shared<int32_t>(-1);
        auto keep = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(info.This()));
        return run_async(
            env, [model, path, index]() { return pali_text_model_add_lora(model, path.c_str(), index.get()); },
            [index, keep](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, *index); });
    }

    Napi::Value Dispose(const Napi::CallbackInfo & info) {
        disposed_ = true;
        if (contexts_ == 0) {
            pali_text_model_free(model_);
            model_ = nullptr;
        }
        return info.Env().Undefined();
    }
};

Napi::FunctionReference TextModel::constructor;

} // namespace

void init_text_model(Napi::Env env, Napi::Object exports) { TextModel::Init(env, exports); }

pali_text_model * unwrap_text_model(Napi::Value value) {
    if (!value.IsObject()) return nullptr;
    return Napi::ObjectWrap<TextModel>::Unwrap(value.As<Napi::Object>())->handle();
}

text_model_lease * lease_text_model(Napi::Value value) {
    TextModel * model = Napi::ObjectWrap<TextModel>::Unwrap(value.As<Napi::Object>());
    model->retain();
    return reinterpret_cast<text_model_lease *>(model);
}

void release_text_model(text_model_lease * lease) {
    if (lease != nullptr) reinterpret_cast<TextModel *>(lease)->release();
}

} // namespace pali_addon
