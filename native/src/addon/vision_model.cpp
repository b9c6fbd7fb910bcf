// VisionModel: an mmproj (SigLIP + projector) handle. Loading runs on a worker thread.
#include "common.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace pali_addon {
namespace {

class VisionModel : public Napi::ObjectWrap<VisionModel> {
  public:
    static Napi::FunctionReference constructor;

    static void Init(Napi::Env env, Napi::Object exports) {
        Napi::Function fn = DefineClass(env, "VisionModel", {
            StaticMethod("load", &VisionModel::Load),
            InstanceMethod("info", &VisionModel::Info),
            InstanceMethod("encode", &VisionModel::Encode),
            InstanceMethod("addLora", &VisionModel::AddLora),
            InstanceMethod("dispose", &VisionModel::Dispose),
        });
        constructor = Napi::Persistent(fn);
        exports.Set("VisionModel", fn);
    }

    explicit VisionModel(const Napi::CallbackInfo & info) : Napi::ObjectWrap<VisionModel>(info) {
        if (info.Length() > 0 && info[0].IsExternal()) model_ = info[0].As<Napi::External<pali_vision_model>>().Data();
    }

    ~VisionModel() override { pali_vision_model_free(model_); }

  private:
    pali_vision_model * model_ = nullptr;

    // load(path, { useGpu }) -> Promise<VisionModel>
    static Napi::Value Load(const Napi::CallbackInfo & info) {
        std::string path = info[0].As<Napi::String>().Utf8Value();
        pali_vision_model_params params = pali_vision_model_default_params();
        params.use_gpu = info[1].As<Napi::Object>().Get("useGpu").As<Napi::Boolean>().Value();
        auto slot = std::make_shared<pali_vision_model *>(nullptr);
        return run_async(
            info.Env(),
            [path, params, slot]() { return pali_vision_model_load(path.c_str(), params, slot.get()); },
            [slot](Napi::Env env) -> Napi::Value {
                Napi::Value handle = constructor.New({ Napi::External<pali_vision_model>::New(env, *slot) });
                *slot = nullptr;
                return handle;
            });
    }

    Napi::Value Info(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_vision_model_info vi;
        int32_t status = pali_vision_model_get_info(model_, &vi);
        if (status != PALI_OK) throw status_error(env, status, pali_last_error());
        Napi::Object o = Napi::Object::New(env);
        o.Set("imageSize", vi.image_size);
        o.Set("patchSize", vi.patch_size);
        o.Set("imageTokenCount", vi.image_token_count);
        o.Set("embeddingLength", vi.n_embd);
        o.Set("feedForwardLength", vi.n_ff);
        o.Set("layers", vi.n_layer);
        o.Set("heads", vi.n_head);
        o.Set("projectionDim", vi.projection_dim);
        o.Set("layerNormEps", vi.layer_norm_eps);
        o.Set("sizeBytes", Napi::Number::New(env, (double) vi.size_bytes));
        o.Set("device", vi.device);
        return o;
    }

    // encode(pixels: Float32Array, nImages, threads, out: Float32Array, abort?: Int32Array(1)) -> Promise<void>;
    // runs off the JS thread. Writing non-zero into abort[0] stops it. The model is kept alive (and pixels, out
    // and abort referenced) until the work is done.
    Napi::Value Encode(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        if (model_ == nullptr) throw status_error(env, PALI_ERR_DISPOSED, "the vision model was disposed");
        Napi::Float32Array pixels = info[0].As<Napi::Float32Array>();
        int32_t n_images = info[1].As<Napi::Number>().Int32Value();
        int32_t threads = info[2].As<Napi::Number>().Int32Value();
        Napi::Float32Array out = info[3].As<Napi::Float32Array>();
        auto keep = std::make_shared<std::vector<Napi::Reference<Napi::Value>>>();
        keep->push_back(Napi::Persistent(info[0]));
        keep->push_back(Napi::Persistent(info[3]));
        keep->push_back(Napi::Persistent(info.This()));
        const volatile int32_t * abort = nullptr;
        if (info.Length() > 4 && info[4].IsTypedArray()) {
            Napi::Int32Array flag = info[4].As<Napi::Int32Array>();
            if (flag.ElementLength() < 1) throw status_error(env, PALI_ERR_INVALID_ARGUMENT, "abort needs one Int32 element");
            abort = flag.Data();
            keep->push_back(Napi::Persistent(info[4]));
        }
        // loras (Int32Array) and scales (Float32Array), copied: the encode runs on another thread.
        std::vector<int32_t> loras;
        std::vector<float> scales;
        if (info.Length() > 6 && info[5].IsTypedArray() && info[6].IsTypedArray()) {
            Napi::Int32Array l = info[5].As<Napi::Int32Array>();
            Napi::Float32Array s = info[6].As<Napi::Float32Array>();
            if (l.ElementLength() != s.ElementLength()) throw status_error(env, PALI_ERR_INVALID_ARGUMENT, "one scale per LoRA");
            loras.assign(l.Data(), l.Data() + l.ElementLength());
            scales.assign(s.Data(), s.Data() + s.ElementLength());
        }
        busy_++;
        const pali_vision_model * model = model_;
        const float * px = pixels.Data();
        float * o = out.Data();
        size_t count = out.ElementLength();
        // busy_ drops when the work ends, failed or not; `keep` holds this object until then.
        return run_async(
            env,
            [=]() {
                const int32_t status = pali_vision_model_encode_lora(model, px, n_images, threads, (int32_t) loras.size(), loras.data(),
                                                                     scales.data(), o, count, abort);
                busy_--;
                return status;
            },
            [keep](Napi::Env e) { return e.Undefined(); });
    }

    // addLora(path) -> Promise<number>: the adapter's index for encode's loras.
    Napi::Value AddLora(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        if (model_ == nullptr) throw status_error(env, PALI_ERR_DISPOSED, "the vision model was disposed");
        std::string path = info[0].As<Napi::String>().Utf8Value();
        auto index = std::make_shared<int32_t>(-1);
        auto keep = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(info.This()));
        pali_vision_model * model = model_;
        busy_++;
        return run_async(
            env,
            [this, model, path, index]() {
                const int32_t status = pali_vision_model_add_lora(model, path.c_str(), index.get());
                busy_--;
                return status;
            },
            [index, keep](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, *index); });
    }

    Napi::Value Dispose(const Napi::CallbackInfo & info) {
        // An encode in flight still uses the weights; JS disposes only when none is (busy() is exposed).
        if (busy_ > 0) throw status_error(info.Env(), PALI_ERR_DISPOSED, "the vision model is busy");
        pali_vision_model_free(model_);
        model_ = nullptr;
        return info.Env().Undefined();
    }

    std::atomic<int> busy_{ 0 };
};

Napi::FunctionReference VisionModel::constructor;

} // namespace

void init_vision_model(Napi::Env env, Napi::Object exports) { VisionModel::Init(env, exports); }

} // namespace pali_addon
