// Shared pieces of the N-API layer: status → JS error, and a Promise-returning AsyncWorker.
#pragma once

#include "pali.h"

#include <napi.h>

#include <functional>
#include <string>

namespace pali_addon {

// A context's hold on its text model's weights (text_model.cpp): while any lease lives, dispose() of the
// model only marks it, and the last release frees it. Both on the JS thread (or its finalizers).
struct text_model_lease;
text_model_lease * lease_text_model(Napi::Value model);
void release_text_model(text_model_lease * lease);


// A JS Error carrying the native status; @pali/core maps it to a PaliError in one place.
inline Napi::Error status_error(Napi::Env env, int32_t status, const std::string & message) {
    Napi::Error err = Napi::Error::New(env, message);
    err.Set("status", Napi::Number::New(env, status));
    err.Set("statusName", Napi::String::New(env, pali_status_name(status)));
    return err;
}

// Runs work() off the JS thread; resolves with done(env) or rejects with the status and message.
class PromiseWorker : public Napi::AsyncWorker {
  public:
    using Work = std::function<int32_t()>;
    using Done = std::function<Napi::Value(Napi::Env)>;

    PromiseWorker(Napi::Env env, Work work, Done done)
        : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), done_(std::move(done)) {}

    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute() override {
        status_ = work_();
        if (status_ != PALI_OK) message_ = pali_last_error();
    }

    void OnOK() override {
        Napi::HandleScope scope(Env());
        if (status_ != PALI_OK) {
            deferred_.Reject(status_error(Env(), status_, message_).Value());
        } else {
            deferred_.Resolve(done_(Env()));
        }
    }

    void OnError(const Napi::Error & e) override { deferred_.Reject(e.Value()); }

  private:
    Napi::Promise::Deferred deferred_;
    Work                    work_;
    Done                    done_;
    int32_t                 status_ = PALI_OK;
    std::string             message_;
};

// Queues work and returns its promise.
inline Napi::Promise run_async(Napi::Env env, PromiseWorker::Work work, PromiseWorker::Done done) {
    auto * worker = new PromiseWorker(env, std::move(work), std::move(done));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
}

void init_text_model(Napi::Env env, Napi::Object exports);
void init_vision_model(Napi::Env env, Napi::Object exports);
void init_context(Napi::Env env, Napi::Object exports);
void init_mask_decoder(Napi::Env env, Napi::Object exports);

} // namespace pali_addon
