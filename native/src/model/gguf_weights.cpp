#include "gguf_weights.h"

#include "../core/internal.h"

#include "ggml-alloc.h"

#include <string>
#include <vector>

namespace pali {

int seek_file(FILE * f, uint64_t offset) {
#ifdef _WIN32
    return _fseeki64(f, (__int64) offset, SEEK_SET);
#else
    return fseeko(f, (off_t) offset, SEEK_SET);
#endif
}

namespace {

int64_t file_size(FILE * f) {
#ifdef _WIN32
    if (_fseeki64(f, 0, SEEK_END) != 0) return -1;
    return _ftelli64(f);
#else
    if (fseeko(f, 0, SEEK_END) != 0) return -1;
    return (int64_t) ftello(f);
#endif
}

} // namespace

int32_t load_weights(const char * path, const gguf_context * gguf, ggml_context * meta, ggml_backend_dev_t device, ggml_backend_buffer_t * buffer) {
    file_ptr file(fopen(path, "rb"));
    if (!file) return fail(PALI_ERR_IO, std::string("could not open ") + path);
    const size_t data_offset = gguf_get_data_offset(gguf);
    const int64_t size = file_size(file.get());
    if (size < 0) return fail(PALI_ERR_IO, std::string("could not read ") + path);
    for (int64_t i = 0; i < gguf_get_n_tensors(gguf); i++) {
        const char * name = gguf_get_tensor_name(gguf, i);
        const uint64_t end = (uint64_t) data_offset + gguf_get_tensor_offset(gguf, i) + ggml_nbytes(ggml_get_tensor(meta, name));
        if (end > (uint64_t) size) {
            return fail(PALI_ERR_MODEL_FORMAT, std::string(path) + " is truncated: tensor " + name + " ends at byte " + std::to_string(end) + " of " +
                                                   std::to_string(size));
        }
    }
    *buffer = ggml_backend_alloc_ctx_tensors_from_buft(meta, ggml_backend_dev_buffer_type(device));
    if (*buffer == nullptr) return fail(PALI_ERR_OUT_OF_MEMORY, std::string("could not allocate the weights of ") + path);
    ggml_backend_buffer_set_usage(*buffer, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    std::vector<uint8_t> staging;
    for (int64_t i = 0; i < gguf_get_n_tensors(gguf); i++) {
        const char * name = gguf_get_tensor_name(gguf, i);
        ggml_tensor * t = ggml_get_tensor(meta, name);
        const size_t bytes = ggml_nbytes(t);
        staging.resize(bytes);
        if (seek_file(file.get(), data_offset + gguf_get_tensor_offset(gguf, i)) != 0 || fread(staging.data(), 1, bytes, file.get()) != bytes) {
            return fail(PALI_ERR_MODEL_FORMAT, std::string(path) + " is truncated: tensor " + name + " cannot be read");
        }
        ggml_backend_tensor_set(t, staging.data(), 0, bytes);
    }
    return PALI_OK;
}

gguf_checker::gguf_checker(const char * kind, const char * path, const gguf_context * gguf, ggml_context * meta)
    : kind_(kind), path_(path), gguf_(gguf), meta_(meta) {}

bool gguf_checker::error(const std::string & problem) {
    if (message_.empty()) message_ = "invalid " + kind_ + " file " + path_ + ": " + problem;
    return false;
}

bool gguf_checker::get_u32(const char * key, int32_t & out, int64_t min, int64_t max) {
    const int64_t id = gguf_find_key(gguf_, key);
    if (id < 0) return error(std::string("missing key ") + key);
    const gguf_type t = gguf_get_kv_type(gguf_, id);
    int64_t v;
    if (t == GGUF_TYPE_UINT32) v = gguf_get_val_u32(gguf_, id);
    else if (t == GGUF_TYPE_INT32) v = gguf_get_val_i32(gguf_, id);
    else return error(std::string("key ") + key + " should be a u32");
    if (v < min || v > max) {
        return error(std::string("key ") + key + " is " + std::to_string(v) + ", expected " + std::to_string(min) + " to " + std::to_string(max));
    }
    out = (int32_t) v;
    return true;
}

bool gguf_checker::get_f32(const char * key, float & out) {
    const int64_t id = gguf_find_key(gguf_, key);
    if (id < 0) return error(std::string("missing key ") + key);
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_FLOAT32) return error(std::string("key ") + key + " should be an f32");
    out = gguf_get_val_f32(gguf_, id);
    return true;
}

bool gguf_checker::get_str(const char * key, std::string & out) {
    const int64_t id = gguf_find_key(gguf_, key);
    if (id < 0) return error(std::string("missing key ") + key);
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_STRING) return error(std::string("key ") + key + " should be a string");
    out = gguf_get_val_str(gguf_, id);
    return true;
}

bool gguf_checker::get_optional_bool(const char * key, bool & out) {
    const int64_t id = gguf_find_key(gguf_, key);
    if (id < 0) return true;
    if (gguf_get_kv_type(gguf_, id) != GGUF_TYPE_BOOL) return error(std::string("key ") + key + " should be a bool");
    out = gguf_get_val_bool(gguf_, id);
    return true;
}

namespace {
std::string dims(const int64_t * ne, size_t n) {
    while (n > 1 && ne[n - 1] == 1) n--;
    std::string s;
    for (size_t i = 0; i < n; i++) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s;
}
} // namespace

ggml_tensor * gguf_checker::tensor(const std::string & name, const std::vector<int64_t> & shape, bool weight) {
    if (!message_.empty()) return nullptr;
    ggml_tensor * t = ggml_get_tensor(meta_, name.c_str());
    if (t == nullptr) {
        error("missing tensor " + name);
        return nullptr;
    }
    for (int i = 0; i < GGML_MAX_DIMS; i++) {
        const int64_t want = i < (int) shape.size() ? shape[i] : 1;
        if (t->ne[i] != want) {
            error("tensor " + name + " has shape [" + dims(t->ne, GGML_MAX_DIMS) + "], expected [" + dims(shape.data(), shape.size()) + "]");
            return nullptr;
        }
    }
    const bool ok = t->type == GGML_TYPE_F32 || (weight && (t->type == GGML_TYPE_F16 || t->type == GGML_TYPE_BF16 || t->type == GGML_TYPE_Q8_0));
    if (!ok) {
        error("tensor " + name + " has type " + ggml_type_name(t->type) + (weight ? ", expected f32, f16, bf16 or q8_0" : ", expected f32"));
        return nullptr;
    }
    used_++;
    return t;
}

} // namespace pali
