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

} // namespace pali
