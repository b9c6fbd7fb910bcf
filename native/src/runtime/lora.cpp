// Which LoRA adapters a context's decodes apply (libllama adds B·(A·x)·scale to each adapted product).
#include "prefix_lm.h"

#include "../core/internal.h"
#include "../model/text_model.h"

#include <cmath>
#include <string>
#include <vector>

extern "C" {

int32_t pali_context_set_loras(pali_context * ctx, int32_t n, const int32_t * loras, const float * scales) {
    return pali::guard("pali_context_set_loras", [&]() -> int32_t {
        if (ctx == nullptr || n < 0 || (n > 0 && (loras == nullptr || scales == nullptr))) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "ctx is required, and loras and scales when n > 0");
        }
        std::vector<llama_adapter_lora *> adapters;
        std::vector<float> values;
        for (int32_t i = 0; i < n; i++) {
            if (loras[i] < 0 || loras[i] >= (int32_t) ctx->model->loras.size()) {
                return pali::fail(PALI_ERR_INVALID_ARGUMENT, "no LoRA " + std::to_string(loras[i]) + " on this model");
            }
            if (!std::isfinite(scales[i])) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "a LoRA scale is not finite");
            adapters.push_back(ctx->model->loras[loras[i]]);
            values.push_back(scales[i]);
        }
        llama_set_adapters_lora(ctx->lctx, adapters.empty() ? nullptr : adapters.data(), adapters.size(), values.empty() ? nullptr : values.data());
        return PALI_OK;
    });
}

} // extern "C"
