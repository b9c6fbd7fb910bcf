// MaskDecoder: the segmentation VQ-VAE decoder handle. Loading and decoding run on a worker thread.
#include "common.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace pali_addon {
namespace {

class MaskDecoder : public Napi::ObjectWrap<MaskDecoder> {
  public:
    static Napi::FunctionReference constructor;

    static void Init(Napi::Env env, Napi::Object exports) {
        Napi::Function fn = DefineClass(env, "MaskDecoder", {
            StaticMethod("load", &MaskDecoder::Load),
            InstanceMethod("info", &MaskDecoder::Info),
            InstanceMethod("decode", &MaskDecoder::Decode),
            InstanceMethod("dispose", &MaskDecoder::Dispose),
        });
        constructor = Napi::Persistent(fn);
        exports.Set("MaskDecoder", fn);
    }

    explicit MaskDecoder(const Napi::CallbackInfo & info) : Napi::ObjectWrap<MaskDecoder>(info) {
        if (info.Length() > 0 && info[0].IsExternal()) decoder_ = info[0].As<Napi::External<pali_mask_decoder>>().Data();
    }

    ~MaskDecoder() override { pali_mask_decoder_free(decoder_); }

  private:
    pali_mask_decoder * decoder_ = nullptr;
    std::atomic<int>    busy_{ 0 };

    // load(path, { useGpu }) -> Promise<MaskDecoder>
    static Napi::Value Load(const Napi::CallbackInfo & info) {
        std::string path = info[0].As<Napi::String>().Utf8Value();
        pali_mask_decoder_params params = pali_mask_decoder_default_params();
        params.use_gpu = info[1].As<Napi::Object>().Get("useGpu").As<Napi::Boolean>().Value();
        auto slot = std::make_shared<pali_mask_decoder *>(nullptr);
        return run_async(
            info.Env(),
            [path, params, slot]() { return pali_mask_decoder_load(path.c_str(), params, slot.get()); },
            [slot](Napi::Env env) -> Napi::Value {
                Napi::Value handle = constructor.New({ Napi::External<pali_mask_decoder>::New(env, *slot) });
                *slot = nullptr;
                return handle;
            });
    }

    Napi::Value Info(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        pali_mask_decoder_info mi;
        int32_t status = pali_mask_decoder_get_info(decoder_, &mi);
        if (status != PALI_OK) throw status_error(env, status, pali_last_error());
        Napi::Object o = Napi::Object::New(env);
        o.Set("codebookSize", mi.codebook_size);
        o.Set("embeddingLength", mi.embedding_length);
        o.Set("tokenCount", mi.token_count);
        o.Set("gridSize", mi.grid_size);
        o.Set("maskSize", mi.mask_size);
        o.Set("sizeBytes", Napi::Number::New(env, (double) mi.size_bytes));
        o.Set("device", mi.device);
        return o;
    }

    // decode(codes: Int32Array, nMasks, out: Float32Array, threads?) -> Promise<void>; runs off the JS thread.
    // The decoder, codes and out stay referenced until the work is done; nothing is copied.
    Napi::Value Decode(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        if (decoder_ == nullptr) throw status_error(env, PALI_ERR_DISPOSED, "the mask decoder was disposed");
        Napi::Int32Array codes = info[0].As<Napi::Int32Array>();
        int32_t n_masks = info[1].As<Napi::Number>().Int32Value();
        Napi::Float32Array out = info[2].As<Napi::Float32Array>();
        int32_t threads = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 0;
        pali_mask_decoder_info mi;
        pali_mask_decoder_get_info(decoder_, &mi);
        if (n_masks <= 0 || codes.ElementLength() != (size_t) n_masks * mi.token_count) {
            throw status_error(env, PALI_ERR_INVALID_ARGUMENT, "codes must hold nMasks × " + std::to_string(mi.token_count) + " values");
        }
        auto keep = std::make_shared<std::vector<Napi::Reference<Napi::Value>>>();
        keep->push_back(Napi::Persistent(info[0]));
        keep->push_back(Napi::Persistent(info[2]));
        keep->push_back(Napi::Persistent(info.This()));
        busy_++;
        const pali_mask_decoder * decoder = decoder_;
        const int32_t * c = codes.Data();
        float * o = out.Data();
        size_t count = out.ElementLength();
        // busy_ drops when the work ends, failed or not (the promise settles after that); `keep` holds this.
        return run_async(
            env,
            [=]() {
                const int32_t status = pali_mask_decoder_decode(decoder, c, n_masks, threads, o, count);
                busy_--;
                return status;
            },
            [keep](Napi::Env e) { return e.Undefined(); });
    }

    Napi::Value Dispose(const Napi::CallbackInfo & info) {
        // A decode in flight still uses the weights.
        if (busy_ > 0) throw status_error(info.Env(), PALI_ERR_DISPOSED, "the mask decoder is busy");
        pali_mask_decoder_free(decoder_);
        decoder_ = nullptr;
        return info.Env().Undefined();
    }
};

Napi::FunctionReference MaskDecoder::constructor;

} // namespace

void init_mask_decoder(Napi::Env env, Napi::Object exports) { MaskDecoder::Init(env, exports); }

} // namespace pali_addon
