// Module entry: library info, logging, GGUF metadata and quantization. Marshalling only.
#include "common.h"

#include "../core/bench.h"

#include <array>
#include <functional>
#include <memory>
#include <string>

namespace pali_addon {
namespace {

Napi::Value BackendInit(const Napi::CallbackInfo & info) {
    std::string dir = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    pali_backend_init(dir.c_str());
    return info.Env().Undefined();
}

Napi::Value SystemInfo(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("version", pali_version());
    out.Set("llamaCpp", pali_llama_version());
    out.Set("ggml", pali_ggml_version());
    out.Set("buildMode", pali_build_mode());
    out.Set("cpuFeatures", pali_cpu_features());
    out.Set("defaultThreads", pali_default_threads());
    Napi::Array devices = Napi::Array::New(env);
    for (int32_t i = 0; i < pali_device_count(); i++) {
        pali_device_info d;
        if (pali_device_get(i, &d) != PALI_OK) continue;
        static const char * types[] = { "cpu", "gpu", "igpu", "accel" };
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", d.name);
        o.Set("description", d.description);
        o.Set("backend", d.backend);
        o.Set("type", types[d.type]);
        o.Set("memoryFree", Napi::Number::New(env, (double) d.memory_free));
        o.Set("memoryTotal", Napi::Number::New(env, (double) d.memory_total));
        devices.Set(devices.Length(), o);
    }
    out.Set("devices", devices);
    return out;
}

Napi::Value GraphStatsJson(const Napi::CallbackInfo & info) {
    char * out = nullptr;
    if (pali_graph_stats_json(&out) != PALI_OK) return Napi::String::New(info.Env(), "[]");
    Napi::String json = Napi::String::New(info.Env(), out);
    pali_string_free(out);
    return json;
}

Napi::Value GgufMetadataJson(const Napi::CallbackInfo & info) {
    std::string path = info[0].As<Napi::String>().Utf8Value();
    auto json = std::make_shared<std::string>();
    return run_async(
        info.Env(),
        [path, json]() {
            char * out = nullptr;
            int32_t status = pali_gguf_metadata_json(path.c_str(), &out);
            if (status == PALI_OK) {
                *json = out;
                pali_string_free(out);
            }
            return status;
        },
        [json](Napi::Env env) { return Napi::String::New(env, *json); });
}

Napi::Value Quantize(const Napi::CallbackInfo & info) {
    std::string in   = info[0].As<Napi::String>().Utf8Value();
    std::string out  = info[1].As<Napi::String>().Utf8Value();
    std::string type = info[2].As<Napi::String>().Utf8Value();
    int32_t threads  = info[3].As<Napi::Number>().Int32Value();
    return run_async(
        info.Env(),
        [in, out, type, threads]() {
            pali_quantize_params p = pali_quantize_default_params();
            p.type      = type.c_str();
            p.n_threads = threads;
            return pali_quantize_model(in.c_str(), out.c_str(), p);
        },
        [](Napi::Env env) { return env.Undefined(); });
}

// preprocessImage(rgb: Uint8Array, width, height, size, out: Float32Array) -> Promise<void>
Napi::Value PreprocessImage(const Napi::CallbackInfo & info) {
    Napi::Uint8Array rgb = info[0].As<Napi::Uint8Array>();
    int32_t width = info[1].As<Napi::Number>().Int32Value();
    int32_t height = info[2].As<Napi::Number>().Int32Value();
    int32_t size = info[3].As<Napi::Number>().Int32Value();
    Napi::Float32Array out = info[4].As<Napi::Float32Array>();
    if (rgb.ByteLength() < (size_t) width * height * 3 || out.ElementLength() < (size_t) 3 * size * size) {
        throw status_error(info.Env(), PALI_ERR_INVALID_ARGUMENT, "image or output buffer too small");
    }
    auto keep = std::make_shared<std::pair<Napi::Reference<Napi::Value>, Napi::Reference<Napi::Value>>>(Napi::Persistent(info[0]), Napi::Persistent(info[4]));
    const uint8_t * px = rgb.Data();
    float * o = out.Data();
    return run_async(
        info.Env(), [=]() { return pali_image_preprocess(px, width, height, size, o); },
        [keep](Napi::Env env) { return env.Undefined(); });
}

// Runs a benchmark off the JS thread; a negative result is an invalid argument (message in pali_last_error()).
Napi::Value bench_async(Napi::Env env, std::function<double()> bench) {
    auto result = std::make_shared<double>(0.0);
    return run_async(
        env,
        [=]() {
            *result = bench();
            return *result < 0 ? PALI_ERR_INVALID_ARGUMENT : PALI_OK;
        },
        [result](Napi::Env env) { return Napi::Number::New(env, *result); });
}

// benchMatmul(m, n, k, threads, type, path, reps) -> Promise<number> (GFLOP/s)
Napi::Value BenchMatmul(const Napi::CallbackInfo & info) {
    int32_t m = info[0].As<Napi::Number>().Int32Value();
    int32_t n = info[1].As<Napi::Number>().Int32Value();
    int32_t k = info[2].As<Napi::Number>().Int32Value();
    int32_t threads = info[3].As<Napi::Number>().Int32Value();
    std::string type = info[4].As<Napi::String>().Utf8Value();
    std::string path = info[5].As<Napi::String>().Utf8Value();
    int32_t reps = info[6].As<Napi::Number>().Int32Value();
    return bench_async(info.Env(), [=]() { return pali_bench_matmul_gflops(m, n, k, threads, type.c_str(), path.c_str(), reps); });
}

// matmul(type, path, m, n, k, w, x, out, threads, bias?, gelu?, head?) -> Promise<void>: out = x · wᵀ (+ bias, GELU,
// padded heads: pali's path only) for the tests of the product paths
Napi::Value Matmul(const Napi::CallbackInfo & info) {
    std::string type = info[0].As<Napi::String>().Utf8Value();
    std::string path = info[1].As<Napi::String>().Utf8Value();
    int32_t m = info[2].As<Napi::Number>().Int32Value();
    int32_t n = info[3].As<Napi::Number>().Int32Value();
    int32_t k = info[4].As<Napi::Number>().Int32Value();
    Napi::Uint8Array w = info[5].As<Napi::Uint8Array>();
    Napi::Float32Array x = info[6].As<Napi::Float32Array>();
    Napi::Float32Array out = info[7].As<Napi::Float32Array>();
    int32_t threads = info[8].As<Napi::Number>().Int32Value();
    const bool has_bias = info.Length() > 9 && info[9].IsTypedArray();
    Napi::Float32Array bias = has_bias ? info[9].As<Napi::Float32Array>() : Napi::Float32Array();
    const bool gelu = info.Length() > 10 && info[10].ToBoolean().Value();
    const int32_t head = info.Length() > 11 && info[11].IsNumber() ? info[11].As<Napi::Number>().Int32Value() : 0;
    if (m < 1 || n < 1 || k < 1 || (int64_t) x.ElementLength() != (int64_t) m * k || (has_bias && (int64_t) bias.ElementLength() != n)) {
        throw status_error(info.Env(), PALI_ERR_INVALID_ARGUMENT, "x must hold m * k values and the bias n");
    }
    auto keep = std::make_shared<std::array<Napi::Reference<Napi::Value>, 4>>(std::array<Napi::Reference<Napi::Value>, 4>{
        Napi::Persistent(info[5]), Napi::Persistent(info[6]), Napi::Persistent(info[7]), has_bias ? Napi::Persistent(info[9]) : Napi::Reference<Napi::Value>() });
    const void * w_data = w.Data();
    size_t w_bytes = w.ByteLength();
    const float * x_data = x.Data();
    const float * bias_data = has_bias ? bias.Data() : nullptr;
    float * out_data = out.Data();
    size_t out_len = out.ElementLength();
    return run_async(
        info.Env(),
        [=]() { return pali_matmul(type.c_str(), path.c_str(), m, n, k, w_data, w_bytes, x_data, bias_data, gelu, head, out_data, out_len, threads); },
        [keep](Napi::Env env) { return env.Undefined(); });
}

// gemmKernel(type, k) -> string: pali's kernel for such weights ("" for none)
Napi::Value GemmKernel(const Napi::CallbackInfo & info) {
    std::string type = info[0].As<Napi::String>().Utf8Value();
    int32_t k = info[1].As<Napi::Number>().Int32Value();
    return Napi::String::New(info.Env(), pali_gemm_kernel(type.c_str(), k));
}

// benchReadBandwidth(mib, threads, reps) -> Promise<number> (GB/s)
Napi::Value BenchReadBandwidth(const Napi::CallbackInfo & info) {
    int32_t mib = info[0].As<Napi::Number>().Int32Value();
    int32_t threads = info[1].As<Napi::Number>().Int32Value();
    int32_t reps = info[2].As<Napi::Number>().Int32Value();
    return bench_async(info.Env(), [=]() { return pali_bench_read_gbs(mib, threads, reps); });
}

Napi::Value RowSize(const Napi::CallbackInfo & info) {
    std::string type = info[0].As<Napi::String>().Utf8Value();
    int64_t n = info[1].As<Napi::Number>().Int64Value();
    int64_t size = pali_row_size(type.c_str(), n);
    if (size < 0) throw status_error(info.Env(), (int32_t) size, pali_last_error());
    return Napi::Number::New(info.Env(), (double) size);
}

// convertRows(type, src: Float32Array, nRows, nPerRow, dst: Uint8Array, threads) -> Promise<void>.
// Both arrays stay referenced until the worker is done; nothing is copied.
Napi::Value ConvertRows(const Napi::CallbackInfo & info) {
    std::string type = info[0].As<Napi::String>().Utf8Value();
    Napi::Float32Array src = info[1].As<Napi::Float32Array>();
    int64_t n_rows = info[2].As<Napi::Number>().Int64Value();
    int64_t n_per_row = info[3].As<Napi::Number>().Int64Value();
    Napi::Uint8Array dst = info[4].As<Napi::Uint8Array>();
    int32_t threads = info[5].As<Napi::Number>().Int32Value();
    if ((int64_t) src.ElementLength() < n_rows * n_per_row) {
        throw status_error(info.Env(), PALI_ERR_INVALID_ARGUMENT, "src holds fewer than nRows * nPerRow values");
    }
    auto keep = std::make_shared<std::pair<Napi::Reference<Napi::Value>, Napi::Reference<Napi::Value>>>(
        Napi::Persistent(info[1]), Napi::Persistent(info[4]));
    const float * src_data = src.Data();
    void * dst_data = dst.Data();
    size_t dst_size = dst.ByteLength();
    return run_async(
        info.Env(),
        [=]() { return pali_convert_rows(type.c_str(), src_data, n_rows, n_per_row, dst_data, dst_size, threads); },
        [keep](Napi::Env env) { return env.Undefined(); });
}

// Log forwarding: native threads hand messages to JS through a thread-safe function.
struct LogMessage { int level; std::string text; };
Napi::ThreadSafeFunction g_log_tsfn;
int g_log_min_level = PALI_LOG_WARN;

void log_to_js(pali_log_level level, const char * text, void *) {
    if ((int) level < g_log_min_level) return;
    auto * msg = new LogMessage{ (int) level, text };
    napi_status s = g_log_tsfn.NonBlockingCall(msg, [](Napi::Env env, Napi::Function fn, LogMessage * m) {
        fn.Call({ Napi::Number::New(env, m->level), Napi::String::New(env, m->text) });
        delete m;
    });
    if (s != napi_ok) delete msg;
}

Napi::Value SetLogCallback(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (g_log_tsfn) {
        pali_log_set(nullptr, nullptr);
        g_log_tsfn.Release();
        g_log_tsfn = Napi::ThreadSafeFunction();
    }
    if (info.Length() > 0 && info[0].IsFunction()) {
        g_log_min_level = info.Length() > 1 ? info[1].As<Napi::Number>().Int32Value() : PALI_LOG_WARN;
        g_log_tsfn = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "pali-log", 0, 1);
        g_log_tsfn.Unref(env);  // logging alone must not keep the process alive
        pali_log_set(log_to_js, nullptr);
    }
    return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
    exports.Set("backendInit", Napi::Function::New(env, BackendInit));
    exports.Set("systemInfo", Napi::Function::New(env, SystemInfo));
    exports.Set("graphStatsJson", Napi::Function::New(env, GraphStatsJson));
    exports.Set("ggufMetadataJson", Napi::Function::New(env, GgufMetadataJson));
    exports.Set("quantize", Napi::Function::New(env, Quantize));
    exports.Set("rowSize", Napi::Function::New(env, RowSize));
    exports.Set("benchMatmul", Napi::Function::New(env, BenchMatmul));
    exports.Set("benchReadBandwidth", Napi::Function::New(env, BenchReadBandwidth));
    exports.Set("preprocessImage", Napi::Function::New(env, PreprocessImage));
    exports.Set("convertRows", Napi::Function::New(env, ConvertRows));
    exports.Set("matmul", Napi::Function::New(env, Matmul));
    exports.Set("gemmKernel", Napi::Function::New(env, GemmKernel));
    exports.Set("setLogCallback", Napi::Function::New(env, SetLogCallback));
    init_text_model(env, exports);
    init_vision_model(env, exports);
    init_context(env, exports);
    init_mask_decoder(env, exports);
    return exports;
}

} // namespace
} // namespace pali_addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return pali_addon::Init(env, exports); }

NODE_API_MODULE(pali, InitModule)
