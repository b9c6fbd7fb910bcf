// Token embedding rows read straight from the model file and dequantized with ggml's own converters.
#include "text_model.h"

#include "gguf_weights.h"

#include "../core/internal.h"

#include "gguf.h"

#include <cstdio>
#include <cstring>
#include <memory>

namespace pali {


int32_t locate_token_embeddings(const char * path, pali_text_model & m) {
    gguf_init_params params = { /*no_alloc =*/ true, /*ctx =*/ nullptr };
    gguf_ptr gguf(gguf_init_from_file(path, params));
    if (!gguf) return fail(PALI_ERR_MODEL_FORMAT, std::string("ggml could not read ") + path);
    const int64_t id = gguf_find_tensor(gguf.get(), "token_embd.weight");
    if (id < 0) return fail(PALI_ERR_MODEL_FORMAT, std::string(path) + " has no token_embd.weight");
    const int64_t * ne = gguf_get_tensor_ne(gguf.get(), id);
    m.n_embd = llama_model_n_embd(m.model);
    m.n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(m.model));
    if (ne[0] != m.n_embd || ne[1] != m.n_vocab) return fail(PALI_ERR_MODEL_FORMAT, std::string(path) + ": token_embd.weight does not match the model's width and vocabulary");
    m.embd_type = gguf_get_tensor_type(gguf.get(), id);
    if (ggml_get_type_traits(m.embd_type)->to_float == nullptr && m.embd_type != GGML_TYPE_F32) {
        return fail(PALI_ERR_UNSUPPORTED_MODEL, std::string("token embeddings of type ") + ggml_type_name(m.embd_type) + " cannot be dequantized");
    }
    m.embd_offset = gguf_get_data_offset(gguf.get()) + gguf_get_tensor_offset(gguf.get(), id);
    m.embd_row_size = ggml_row_size(m.embd_type, m.n_embd);
    return PALI_OK;
}

int32_t read_token_embeddings(const pali_text_model & m, const int32_t * ids, int32_t n, float * out) {
    file_ptr file(fopen(m.path.c_str(), "rb"));
    if (!file) return fail(PALI_ERR_IO, "could not reopen " + m.path);
    std::vector<uint8_t> row(m.embd_row_size);
    const auto * traits = ggml_get_type_traits(m.embd_type);
    for (int32_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m.n_vocab) return fail(PALI_ERR_INVALID_ARGUMENT, "token id " + std::to_string(ids[i]) + " is outside the vocabulary");
        if (seek_file(file.get(), m.embd_offset + (uint64_t) ids[i] * m.embd_row_size) != 0 || fread(row.data(), 1, row.size(), file.get()) != row.size()) {
            return fail(PALI_ERR_IO, "could not read token embeddings from " + m.path);
        }
        float * dst = out + (size_t) i * m.n_embd;
        if (m.embd_type == GGML_TYPE_F32) memcpy(dst, row.data(), row.size());
        else traits->to_float(row.data(), dst, m.n_embd);
    }
    return PALI_OK;
}

} // namespace pali
