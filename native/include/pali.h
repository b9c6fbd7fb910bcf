// pali.h: the C API of pali's native core.
//
// Conventions (as in llama.h): opaque handles, *_default_params(), init/free pairs, int status codes.
// No function throws or aborts on bad input: it returns a negative status and records a message that
// pali_last_error() returns on the same thread. Strings returned by the library stay valid until the
// next call on the same thread unless noted.
#ifndef PALI_H
#define PALI_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(PALI_SHARED)
#    ifdef PALI_BUILD
#        define PALI_API __declspec(dllexport)
#    else
#        define PALI_API __declspec(dllimport)
#    endif
#elif defined(PALI_SHARED)
#    define PALI_API __attribute__((visibility("default")))
#else
#    define PALI_API
#endif

// ---- status codes --------------------------------------------------------------------------------

enum pali_status {
    PALI_OK                      =  0,
    PALI_ERR_INVALID_ARGUMENT    = -1,
    PALI_ERR_MODEL_FORMAT        = -2,
    PALI_ERR_UNSUPPORTED_MODEL   = -3,
    PALI_ERR_BACKEND             = -4,
    PALI_ERR_ABORTED             = -5,
    PALI_ERR_OUT_OF_MEMORY       = -6,
    PALI_ERR_IO                  = -7,
    PALI_ERR_CONTEXT_OVERFLOW    = -8,
    PALI_ERR_DISPOSED            = -9,  // the handle was freed, or is still in use and cannot be freed yet
    PALI_ERR_INTERNAL            = -99,
};

// Stable name of a status ("PALI_ERR_MODEL_FORMAT"); "PALI_ERR_UNKNOWN" for anything else.
PALI_API const char * pali_status_name(int32_t status);

// Message of the last failed call on this thread ("" when none).
PALI_API const char * pali_last_error(void);

// ---- logging -------------------------------------------------------------------------------------

enum pali_log_level {
    PALI_LOG_DEBUG = 1,
    PALI_LOG_INFO  = 2,
    PALI_LOG_WARN  = 3,
    PALI_LOG_ERROR = 4,
};

// Receives pali's, libllama's and ggml's messages. May be called from any thread.
typedef void (*pali_log_callback)(enum pali_log_level level, const char * text, void * user_data);

// NULL restores the default: ERROR to stderr (PALI_LOG=debug|info|warn|error in the environment changes it).
PALI_API void pali_log_set(pali_log_callback callback, void * user_data);

// ---- library and devices -------------------------------------------------------------------------

// Loads the ggml backends found in dir (the CPU variant that fits this processor, GPU backends that
// were built). Safe to call more than once; only the first call loads. dir may be NULL.
PALI_API void pali_backend_init(const char * dir);

PALI_API const char * pali_version(void);        // pali's own version
PALI_API const char * pali_llama_version(void);  // llama.cpp release tag and commit it was built from
PALI_API const char * pali_ggml_version(void);   // ggml_version() of the loaded ggml
PALI_API const char * pali_build_mode(void);     // "prebuilt" or "source"

enum pali_device_type {
    PALI_DEVICE_CPU   = 0,
    PALI_DEVICE_GPU   = 1,
    PALI_DEVICE_IGPU  = 2,
    PALI_DEVICE_ACCEL = 3,
};

struct pali_device_info {
    const char *          name;         // "CPU", "CUDA0", ...
    const char *          description;  // processor or GPU model
    const char *          backend;      // backend registry name ("CPU", "CUDA", "Metal", "Vulkan")
    enum pali_device_type type;
    uint64_t              memory_free;  // bytes
    uint64_t              memory_total; // bytes
};

PALI_API int32_t pali_device_count(void);
PALI_API int32_t pali_device_get(int32_t index, struct pali_device_info * out);

// Features of the CPU backend in use, "NAME=VALUE" pairs separated by ";" (e.g. "AVX2=1;AVX512=1").
PALI_API const char * pali_cpu_features(void);

// Threads pali uses by default: the number of physical cores, at least 1.
PALI_API int32_t pali_default_threads(void);

// Where the last run of each of pali's own ggml graphs (the SigLIP encoder, the mask decoder) ran, as JSON
// in *out_json (free with pali_string_free): [{"graph", "nodes", "splits", "nodesByBackend": {"Vulkan0": n,
// "CPU": m}, "weightBytesByBuffer": {"Vulkan0": bytes}}]. Read from the scheduler after the run, so it shows
// which backend each node was given and which buffers the weights it read live in.
PALI_API int32_t pali_graph_stats_json(char ** out_json);

// ---- GGUF metadata, as ggml's own reader sees it -------------------------------------------------

// Reads the metadata and tensor index of a GGUF file with ggml's gguf reader and returns them as JSON
// in *out_json (free with pali_string_free). Meant for inspection and as an independent check of
// the TypeScript reader. Callers validate untrusted files first.
PALI_API int32_t pali_gguf_metadata_json(const char * path, char ** out_json);

PALI_API void pali_string_free(char * s);

// ---- quantization (libllama's quantizer) ---------------------------------------------------------

struct pali_quantize_params {
    const char * type;     // "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k", "f16", "bf16", "f32"
    int32_t      n_threads; // <= 0: pali_default_threads()
};

PALI_API struct pali_quantize_params pali_quantize_default_params(void);

// Quantizes a libllama-loadable GGUF (a text model) with llama.cpp's choices of which tensors keep
// more precision. The output is written to a temporary file beside out_path and renamed into place.
PALI_API int32_t pali_quantize_model(const char * in_path, const char * out_path, struct pali_quantize_params params);

// ---- tensor conversion (ggml's converters and quantizers) -------------------------------------

// Bytes that n_per_row values take in the named ggml type ("f32", "f16", "bf16", "q8_0", "q4_K", ...;
// case-insensitive), or a negative status for an unknown type or a row length that is not whole blocks.
PALI_API int64_t pali_row_size(const char * type, int64_t n_per_row);

// Converts n_rows rows of n_per_row float32 values into dst in the named ggml type, with ggml's reference
// converters (f16, bf16: round to nearest even) and quantizers (q8_0, k-quants, ...), on n_threads
// threads (<= 0: pali_default_threads()). dst_size must be n_rows * pali_row_size(type, n_per_row).
PALI_API int32_t pali_convert_rows(const char * type, const float * src, int64_t n_rows, int64_t n_per_row,
                                   void * dst, size_t dst_size, int32_t n_threads);

// ---- text model (libllama) -----------------------------------------------------------------------

typedef struct pali_text_model pali_text_model;

// Called with progress in [0, 1]; return false to abort the load.
typedef bool (*pali_progress_callback)(float progress, void * user_data);

struct pali_text_model_params {
    int32_t                n_gpu_layers;   // layers to offload when a GPU backend is present (-1: all)
    bool                   use_mmap;
    pali_progress_callback progress;
    void *                 progress_user_data;
};

PALI_API struct pali_text_model_params pali_text_model_default_params(void);

PALI_API int32_t pali_text_model_load(const char * path, struct pali_text_model_params params, pali_text_model ** out);
PALI_API void    pali_text_model_free(pali_text_model * model);

struct pali_text_model_info {
    const char * description; // llama_model_desc()
    uint64_t     n_params;
    uint64_t     size_bytes;
    int32_t      n_embd;
    int32_t      n_layer;
    int32_t      n_vocab;
    int32_t      n_ctx_train;
};

PALI_API int32_t pali_text_model_get_info(const pali_text_model * model, struct pali_text_model_info * out);

// libllama's own tokenization of text (UTF-8, len bytes) into out (capacity n_max). parse_special matches
// control and user-defined tokens written in the text. Returns the token count, or -count when n_max is
// too small, or a negative status.
PALI_API int32_t pali_text_model_tokenize(const pali_text_model * model, const char * text, int32_t len, bool parse_special,
                                          int32_t * out, int32_t n_max);

// A metadata value as libllama's loader stored it (stringified); PALI_ERR_INVALID_ARGUMENT when absent.
PALI_API int32_t pali_text_model_meta(const pali_text_model * model, const char * key, char * buf, size_t buf_size);

// Loads a libllama LoRA adapter (pali convert --lora) for this model and returns its index in *index. Adapters
// live as long as the model; add them before creating contexts. pali_context_set_loras chooses which apply.
PALI_API int32_t pali_text_model_add_lora(pali_text_model * model, const char * path, int32_t * index);

// ---- vision model (SigLIP + projector from an mmproj GGUF) ---------------------------------------

typedef struct pali_vision_model pali_vision_model;

struct pali_vision_model_params {
    bool use_gpu; // place the weights on the first GPU device when one is present
};

PALI_API struct pali_vision_model_params pali_vision_model_default_params(void);

// Loads an mmproj file, checking every key, tensor name, shape and type first.
PALI_API int32_t pali_vision_model_load(const char * path, struct pali_vision_model_params params, pali_vision_model ** out);
PALI_API void    pali_vision_model_free(pali_vision_model * model);

struct pali_vision_model_info {
    int32_t     image_size;
    int32_t     patch_size;
    int32_t     image_token_count;
    int32_t     n_embd;
    int32_t     n_ff;
    int32_t     n_layer;
    int32_t     n_head;
    int32_t     projection_dim;
    float       layer_norm_eps;
    uint64_t    size_bytes;
    const char * device;
};

PALI_API int32_t pali_vision_model_get_info(const pali_vision_model * model, struct pali_vision_model_info * out);

// Runs SigLIP and the projector. pixels: n_images × [3][S][S] floats from pali_image_preprocess;
// out: room for n_images × image_token_count × projection_dim floats (out_count), row-major [image][token][dim].
// abort (may be NULL): polled between graph nodes on the CPU backend; non-zero stops the encode with
// PALI_ERR_ABORTED (another thread may set it at any time).
PALI_API int32_t pali_vision_model_encode(const pali_vision_model * model, const float * pixels, int32_t n_images,
                                          int32_t n_threads, float * out, size_t out_count, const volatile int32_t * abort);

// Loads a vision LoRA file (pali convert --lora) for this model and returns its index in *index. Adapters
// live as long as the model; add them before the first encode (not while one runs).
PALI_API int32_t pali_vision_model_add_lora(pali_vision_model * model, const char * path, int32_t * index);

// pali_vision_model_encode with adapters: loras[i] (indices from pali_vision_model_add_lora) at scales[i].
PALI_API int32_t pali_vision_model_encode_lora(const pali_vision_model * model, const float * pixels, int32_t n_images,
                                               int32_t n_threads, int32_t n_loras, const int32_t * loras, const float * scales,
                                               float * out, size_t out_count, const volatile int32_t * abort);

// ---- images ----------------------------------------------------------------------------------------

// Resizes an 8-bit RGB image (row-major, 3 bytes a pixel) to size×size exactly as PIL's Image.resize with
// BICUBIC does, and writes (x/255 - 0.5)/0.5 as three channel planes [3][size][size] into out.
PALI_API int32_t pali_image_preprocess(const uint8_t * rgb, int32_t width, int32_t height, int32_t size, float * out);

// ---- context: prefix-LM generation and scoring (one request at a time) ------------------------------

typedef struct pali_context pali_context;

struct pali_context_params {
    int32_t n_ctx;      // positions: image tokens + prompt + answer
    int32_t n_threads;  // <= 0: pali_default_threads()
    bool    flash_attn; // ggml's flash attention (f16 inside); off for exact parity
    bool    kv_f32;     // f32 KV cache (exact parity) instead of f16
    int32_t n_beams_max; // beam search up to this many beams (1: none)
    int32_t n_ubatch;    // the longest prefix (image tokens + prompt), which runs as one batch; 0: n_ctx
    int32_t n_parallel;  // sequences for pali_context_seq_* (continuous batching), each with n_ctx positions; 1: one
};

PALI_API struct pali_context_params pali_context_default_params(void);
PALI_API int32_t pali_context_init(const pali_text_model * model, struct pali_context_params params, pali_context ** out);
PALI_API void    pali_context_free(pali_context * ctx);

// The adapters (indices from pali_text_model_add_lora, with scales) that the next decodes apply; n = 0: none.
// A sequence's cache is only valid under the set it was filled with: change the set only between requests,
// or step sequences of one set at a time. Changing it costs a graph reservation on the next decode.
PALI_API int32_t pali_context_set_loras(pali_context * ctx, int32_t n, const int32_t * loras, const float * scales);

// Makes the running (or next) prefill/generate/score stop as soon as possible (PALI_ERR_ABORTED or
// finish reason ABORTED). Safe from any thread; pass false to re-arm.
PALI_API void    pali_context_abort(pali_context * ctx, bool abort);

// Clears the context and runs [image rows][text tokens] as one bidirectional block at positions 1..n.
// image_embd: n_image × n_embd floats as the projector made them (unscaled); text_ids: <bos>, prompt, "\n".
PALI_API int32_t pali_context_prefill(pali_context * ctx, const float * image_embd, int32_t n_image, const int32_t * text_ids, int32_t n_text);

// The logits of the last position (n_vocab floats).
PALI_API int32_t pali_context_logits(pali_context * ctx, float * out, int32_t n_vocab);

enum pali_finish_reason {
    PALI_FINISH_EOS     = 0,
    PALI_FINISH_LENGTH  = 1,
    PALI_FINISH_STOP    = 2,
    PALI_FINISH_ABORTED = 3,
};

struct pali_generate_params {
    int32_t         max_tokens;
    float           temperature;    // 0: greedy
    int32_t         top_k;          // 0: off
    float           top_p;          // 1: off
    float           min_p;          // 0: off
    float           repeat_penalty; // 1: off
    int32_t         repeat_last_n;
    uint32_t        seed;
};

PALI_API struct pali_generate_params pali_generate_default_params(void);

// Called on the generating thread for each token with its log-probability under the model; return false to stop.
typedef bool (*pali_token_callback)(int32_t token, float logprob, void * user_data);

// Causal decoding after the prefix, in C++; streams each token to callback.
PALI_API int32_t pali_context_generate(pali_context * ctx, const struct pali_generate_params * params, pali_token_callback callback,
                                       void * user_data, int32_t * finish_reason);

// Beam search after the prefix, as transformers' generate(num_beams, length_penalty) does it. Writes the
// best hypothesis (ending with <eos> when it finished) into out_tokens/out_logprobs (room for max_tokens).
// The context needs n_beams_max >= n_beams and room for prefix + n_beams × max_tokens positions.
PALI_API int32_t pali_context_beam_search(pali_context * ctx, int32_t n_beams, float length_penalty, int32_t max_tokens,
                                          int32_t * out_tokens, float * out_logprobs, int32_t * n_out, int32_t * finish_reason);

// Teacher-forced log-probabilities of suffix (its tokens, normally ending with <eos>) after the prefix.
PALI_API int32_t pali_context_score(pali_context * ctx, const int32_t * suffix, int32_t n, float * logprobs);

// ---- continuous batching: many requests on one context, each in its own sequence ---------------------
// Sequences 0 .. n_parallel-1 share the KV cache. A request's prefix runs alone (bidirectional, as
// pali_context_prefill), then the next tokens of all active requests decode together, one llama_decode per
// step; requests join and leave between steps. The whole-context calls above (prefill, generate, beam
// search, score) need every sequence released. Calls on one context must not overlap.

// Clears seq and runs its prefix. With params, samples the first answer token (token, logprob) and keeps
// the sampler for later steps; without (NULL), copies the last logits into logits (n_vocab floats, may be
// NULL; else n_logits must be n_vocab) for scoring or inspection.
PALI_API int32_t pali_context_seq_prefill(pali_context * ctx, int32_t seq, const float * image_embd, int32_t n_image, const int32_t * text_ids,
                                          int32_t n_text, const struct pali_generate_params * params, int32_t * token, float * logprob,
                                          float * logits, int32_t n_logits);

// One decode step: appends tokens[i] to seqs[i] (distinct, active) in one llama_decode, then samples each
// sequence's next token into out_tokens[i] with its log-probability.
PALI_API int32_t pali_context_seq_step(pali_context * ctx, int32_t n, const int32_t * seqs, const int32_t * tokens, int32_t * out_tokens,
                                       float * out_logprobs);

// Teacher-forced log-probabilities of suffix after seq's prefix (run with params NULL just before).
PALI_API int32_t pali_context_seq_score(pali_context * ctx, int32_t seq, const int32_t * suffix, int32_t n, float * logprobs);

// Frees seq's cache cells and sampler. Idempotent.
PALI_API void    pali_context_seq_release(pali_context * ctx, int32_t seq);

struct pali_timings {
    double  prefill_ms;
    int32_t n_prefill;
    double  decode_ms;
    int32_t n_decoded;
};

PALI_API struct pali_timings pali_context_timings(const pali_context * ctx);

// ---- segmentation mask decoder (the VQ-VAE decoder of vae-oid.npz, from mask-decoder-f32.gguf) ----

typedef struct pali_mask_decoder pali_mask_decoder;

struct pali_mask_decoder_params {
    bool use_gpu; // place the weights on the first GPU device when one is present
};

PALI_API struct pali_mask_decoder_params pali_mask_decoder_default_params(void);

// Loads a mask decoder file (pali convert --seg-vae), checking every key, tensor name, shape and type first.
PALI_API int32_t pali_mask_decoder_load(const char * path, struct pali_mask_decoder_params params, pali_mask_decoder ** out);
PALI_API void    pali_mask_decoder_free(pali_mask_decoder * decoder);

struct pali_mask_decoder_info {
    int32_t      codebook_size;    // codes are 0 .. codebook_size - 1 (<seg000> .. <seg127>: 128)
    int32_t      embedding_length; // codebook vector length (512)
    int32_t      token_count;      // codes per mask (16), laid out row-major on a grid_size × grid_size grid
    int32_t      grid_size;        // 4
    int32_t      mask_size;        // side of the output mask (64)
    uint64_t     size_bytes;
    const char * device;
};

PALI_API int32_t pali_mask_decoder_get_info(const pali_mask_decoder * decoder, struct pali_mask_decoder_info * out);

// Decodes n_masks code sequences. codes: n_masks × token_count indices in [0, codebook_size), in generation
// order; out: room for n_masks × mask_size × mask_size floats (out_count), row-major [mask][y][x], the raw
// output of the last convolution (about [-1, 1]; not clipped, no sigmoid). Runs in float32 throughout.
PALI_API int32_t pali_mask_decoder_decode(const pali_mask_decoder * decoder, const int32_t * codes, int32_t n_masks,
                                          int32_t n_threads, float * out, size_t out_count);

#ifdef __cplusplus
}
#endif

#endif // PALI_H
