// Shared by the loaders of our own GGUF files (mmproj, mask decoder) and the token-embedding reader:
// RAII for gguf/FILE handles, 64-bit seeks, and reading every tensor into a backend buffer after checking
// that its bytes lie inside the file.
#pragma once

#include "ggml-backend.h"
#include "ggml.h"
#include "gguf.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace pali {

struct gguf_deleter { void operator()(gguf_context * c) const { gguf_free(c); } };
struct file_closer { void operator()(FILE * f) const { fclose(f); } };
using gguf_ptr = std::unique_ptr<gguf_context, gguf_deleter>;
using file_ptr = std::unique_ptr<FILE, file_closer>;

// fseek to a 64-bit offset; 0 on success.
int seek_file(FILE * f, uint64_t offset);

// Allocates meta's tensors in device's buffer type (into *buffer, owned by the caller) and reads their bytes
// from path. A tensor that would end past the end of the file is reported before anything is allocated.
int32_t load_weights(const char * path, const gguf_context * gguf, ggml_context * meta, ggml_backend_dev_t device, ggml_backend_buffer_t * buffer);

// load_weights, with `matrices` (weights that only ever multiply activations) placed in the CPU backend's
// extra buffer types (repacked q4_0 / q4_K layouts, AMX tiles) where its kernels take them; one buffer per
// type used, into `buffers` (owned by the caller, also on failure).
int32_t load_placed_weights(const char * path, const gguf_context * gguf, ggml_context * meta, ggml_backend_dev_t device,
                            const std::set<const ggml_tensor *> & matrices, std::vector<ggml_backend_buffer_t> & buffers);

// Reads and checks the keys and tensors of one of our GGUF files. The first problem wins and becomes the
// message ("invalid <kind> file <path>: <problem>"); later calls then return false / nullptr.
class gguf_checker {
  public:
    gguf_checker(const char * kind, const char * path, const gguf_context * gguf, ggml_context * meta);

    bool get_u32(const char * key, int32_t & out, int64_t min = 1, int64_t max = 1 << 24);
    bool get_f32(const char * key, float & out);
    bool get_str(const char * key, std::string & out);
    // An optional bool: absent leaves out as it is; any other type is an error (gguf_get_val_bool asserts on it).
    bool get_optional_bool(const char * key, bool & out);

    // The tensor of exactly this shape (ggml order), of type f32, or also f16/bf16/q8_0 when weight is true.
    ggml_tensor * tensor(const std::string & name, const std::vector<int64_t> & shape, bool weight);

    int64_t used() const { return used_; }
    const std::string & message() const { return message_; }
    bool error(const std::string & problem);

  private:
    std::string          kind_, path_;
    const gguf_context * gguf_;
    ggml_context *       meta_;
    std::string          message_;
    int64_t              used_ = 0;
};

} // namespace pali
