// The decoder handle: libllama's model plus where its token embedding rows live in the file, which pali
// reads itself to build the prefix as embeddings (libllama takes a batch of tokens or of embeddings).
#pragma once

#include "pali.h"

#include "ggml.h"
#include "llama.h"

#include <string>
#include <vector>

struct pali_text_model {
    llama_model * model = nullptr;
    std::string   description;
    std::string   path;
    ggml_type     embd_type = GGML_TYPE_F32;
    size_t        embd_offset = 0;   // absolute file offset of token_embd.weight
    size_t        embd_row_size = 0; // bytes per row
    int32_t       n_embd = 0;
    int32_t       n_vocab = 0;
    std::vector<llama_adapter_lora *> loras; // owned by libllama's model, freed with it
};

namespace pali {

// Finds token_embd.weight in the model file and checks it against libllama's hyperparameters.
int32_t locate_token_embeddings(const char * path, pali_text_model & model);

// Dequantized embedding rows of `ids` into out (n × n_embd floats).
int32_t read_token_embeddings(const pali_text_model & model, const int32_t * ids, int32_t n, float * out);

} // namespace pali
