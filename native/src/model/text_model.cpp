// The Gemma / Gemma 2 decoder, loaded by libllama.
#include "../core/internal.h"

#include "llama.h"

#include <climits>
#include <filesystem>
#include <string>
#include <system_error>

#include "text_model.h"

extern "C" {

struct pali_text_model_params pali_text_model_default_params(void) {
    pali_text_model_params p;
    p.n_gpu_layers       = -1;
    p.use_mmap           = true;
    p.progress           = nullptr;
    p.progress_user_data = nullptr;
    return p;
}

int32_t pali_text_model_load(const char * path, struct pali_text_model_params params, pali_text_model ** out) {
    return pali::guard("pali_text_model_load", [&]() -> int32_t {
        if (path == nullptr || out == nullptr) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "path and out are required");
        }
        *out = nullptr;
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec)) {
            return pali::fail(PALI_ERR_IO, std::string("no such file: ") + path);
        }
        llama_model_params mp = llama_model_default_params();
        mp.n_gpu_layers = params.n_gpu_layers;
        if (!params.use_mmap) mp.load_mode = LLAMA_LOAD_MODE_NONE;
        if (params.progress != nullptr) {
            mp.progress_callback           = params.progress;
            mp.progress_callback_user_data = params.progress_user_data;
        }
        llama_model * model = llama_model_load_from_file(path, mp);
        if (model == nullptr) {
            return pali::fail(PALI_ERR_MODEL_FORMAT, std::string("libllama could not load ") + path + " (see the log for the reason)");
        }
        auto * handle = new pali_text_model();
        handle->model = model;
        handle->path = path;
        const int32_t status = pali::locate_token_embeddings(path, *handle);
        if (status != PALI_OK) {
            llama_model_free(model);
            delete handle;
            return status;
        }
        char buf[256];
        llama_model_desc(model, buf, sizeof(buf));
        handle->description = buf;
        *out = handle;
        return PALI_OK;
    });
}

void pali_text_model_free(pali_text_model * model) {
    if (model == nullptr) return;
    llama_model_free(model->model);
    delete model;
}

int32_t pali_text_model_get_info(const pali_text_model * model, struct pali_text_model_info * out) {
    if (model == nullptr || out == nullptr) {
        return pali::fail(PALI_ERR_INVALID_ARGUMENT, "model and out are required");
    }
    out->description = model->description.c_str();
    out->n_params    = llama_model_n_params(model->model);
    out->size_bytes  = llama_model_size(model->model);
    out->n_embd      = llama_model_n_embd(model->model);
    out->n_layer     = llama_model_n_layer(model->model);
    out->n_vocab     = llama_vocab_n_tokens(llama_model_get_vocab(model->model));
    out->n_ctx_train = llama_model_n_ctx_train(model->model);
    return PALI_OK;
}

int32_t pali_text_model_tokenize(const pali_text_model * model, const char * text, int32_t len, bool parse_special,
                                 int32_t * out, int32_t n_max) {
    if (model == nullptr || text == nullptr || out == nullptr || len < 0 || n_max < 0) {
        return pali::fail(PALI_ERR_INVALID_ARGUMENT, "model, text and out are required");
    }
    // libllama returns INT32_MIN on overflow of its own counters; anything else negative is -needed.
    const int32_t n = llama_tokenize(llama_model_get_vocab(model->model), text, len, out, n_max, /*add_special*/ false, parse_special);
    if (n == INT32_MIN) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "text too long to tokenize");
    return n;
}

int32_t pali_text_model_meta(const pali_text_model * model, const char * key, char * buf, size_t buf_size) {
    if (model == nullptr || key == nullptr || buf == nullptr) {
        return pali::fail(PALI_ERR_INVALID_ARGUMENT, "model, key and buf are required");
    }
    const int32_t n = llama_model_meta_val_str(model->model, key, buf, buf_size);
    if (n < 0) {
        return pali::fail(PALI_ERR_INVALID_ARGUMENT, std::string("no metadata key ") + key);
    }
    return n;
}

int32_t pali_text_model_add_lora(pali_text_model * model, const char * path, int32_t * index) {
    return pali::guard("pali_text_model_add_lora", [&]() -> int32_t {
        if (model == nullptr || path == nullptr || index == nullptr) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "model, path and index are required");
        }
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec)) return pali::fail(PALI_ERR_IO, std::string("no such file: ") + path);
        llama_adapter_lora * lora = llama_adapter_lora_init(model->model, path);
        if (lora == nullptr) {
            return pali::fail(PALI_ERR_MODEL_FORMAT, std::string("libllama could not load the LoRA adapter ") + path + " (see the log for the reason)");
        }
        model->loras.push_back(lora);
        *index = (int32_t) model->loras.size() - 1;
        return PALI_OK;
    });
}

} // extern "C"
