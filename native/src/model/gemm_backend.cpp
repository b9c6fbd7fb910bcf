// pali's matrix product (cpu_gemm.h) for libllama's prefill. libllama builds the decoder's graph itself, so pali
// cannot put its own op into it; but every llama context adds the registered "accelerator" devices (the kind
// ggml's BLAS backend is) before the CPU, and its scheduler gives such a backend each node it says it supports
// whose weights sit in a buffer it can read. This backend supports one thing: a weight-by-activations product
// (MUL_MAT) with bf16 (on CPUs with AVX512_BF16) or f32 weights in plain host memory, over at least MIN_ROWS tokens
// (prefill; decode steps are gemv, bound by memory, and stay with ggml). Its buffers are the CPU's, so nothing
// is copied; it runs the kernels on its own threads, while the CPU backend's are idle between its graph splits.
// Weights libllama repacks for the CPU (q4_0, q4_K, q8_0 interleaved layouts) stay with ggml's kernels for them.
#include "gemm_backend.h"

#include "cpu_gemm.h"

#include "ggml-backend-impl.h"
#include "ggml-backend.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace pali {
namespace {

constexpr int64_t MIN_ROWS = 32; // tokens: below this the product is a few gemv, ggml's

// Threads for one job: hands job(ith, n) to n - 1 new threads and runs ith 0 itself. No pool: workers kept
// asleep between prefills were measured to slow the decode steps after them by a quarter (2-core VM), and a
// start costs tens of microseconds against the milliseconds of one product.
void run_threads(int n, const std::function<void(int, int)> & job) {
    std::vector<std::thread> workers;
    int started = 1;
    try {
        for (; started < n; started++) workers.emplace_back(job, started, n);
    } catch (const std::system_error &) {
        // no thread to be had (a process limit): the shares not started run here
    }
    job(0, n);
    for (int i = started; i < n; i++) job(i, n);
    for (auto & t : workers) t.join();
}

struct backend_context {
    int n_threads = (int) std::max(1u, std::thread::hardware_concurrency());
    std::vector<uint16_t> bf16; // the activations rounded to bf16, for the bf16 kernel
};

bool takes(const ggml_tensor * op) {
    if (op->op != GGML_OP_MUL_MAT) return false;
    const ggml_tensor * w = op->src[0];
    const ggml_tensor * x = op->src[1];
    // bf16 and f32 weights only: there ggml's decode steps read the activations as this product does (rounded
    // to bf16, or f32), so a token's numbers do not depend on how many came in its batch; for f16 and q8_0 weights
    // ggml rounds them to f16 or q8_0 and the f32 kernels do not (measured: log-probabilities 0.02 apart).
    const bool same_rounding = w->type == GGML_TYPE_F32 || (w->type == GGML_TYPE_BF16 && strcmp(cpu_gemm_kernel(w), "avx512-bf16") == 0);
    return same_rounding && w->buffer != nullptr && ggml_backend_buffer_get_usage(w->buffer) == GGML_BACKEND_BUFFER_USAGE_WEIGHTS && cpu_gemm_takes(w) &&
           x->type == GGML_TYPE_F32 && ggml_is_contiguous(x) && x->ne[2] == 1 && x->ne[3] == 1 && x->ne[1] >= MIN_ROWS && op->type == GGML_TYPE_F32 &&
           ggml_is_contiguous(op);
}

void mul_mat(backend_context & ctx, ggml_tensor * node) {
    const ggml_tensor * w = node->src[0];
    ggml_tensor * x = node->src[1];
    const int64_t K = w->ne[0], M = x->ne[1];
    ggml_tensor xb = *x;
    if (strcmp(cpu_gemm_kernel(w), "avx512-bf16") == 0) {
        ctx.bf16.resize((size_t) (M * K));
        xb.type = GGML_TYPE_BF16;
        xb.data = ctx.bf16.data();
        const float * src = static_cast<const float *>(x->data);
        run_threads(ctx.n_threads, [&](int ith, int nth) {
            const int64_t r0 = M * ith / nth, r1 = M * (ith + 1) / nth;
            cpu_gemm_round_bf16(src + r0 * K, ctx.bf16.data() + r0 * K, (r1 - r0) * K);
        });
    }
    ggml_tensor dst = *node; // the kernel reads its operands from dst->src
    dst.src[1] = &xb;
    dst.src[2] = nullptr;
    const cpu_gemm_fn fn = cpu_gemm_function(w);
    run_threads(ctx.n_threads, [&](int ith, int nth) { fn(&dst, ith, nth, nullptr); });
}

// ---- the backend ------------------------------------------------------------------------------------------------

const char * backend_name(ggml_backend_t) { return "PALI"; }

void backend_free(ggml_backend_t backend) {
    delete static_cast<backend_context *>(backend->context);
    delete backend;
}

ggml_status backend_graph_compute(ggml_backend_t backend, ggml_cgraph * graph) {
    auto & ctx = *static_cast<backend_context *>(backend->context);
    for (int i = 0; i < ggml_graph_n_nodes(graph); i++) {
        ggml_tensor * node = ggml_graph_node(graph, i);
        switch (node->op) {
            case GGML_OP_NONE:
            case GGML_OP_RESHAPE:
            case GGML_OP_VIEW:
            case GGML_OP_PERMUTE:
            case GGML_OP_TRANSPOSE: break;
            case GGML_OP_MUL_MAT: mul_mat(ctx, node); break;
            default: return GGML_STATUS_FAILED; // the scheduler gives it nothing else (supports_op)
        }
    }
    return GGML_STATUS_SUCCESS;
}

void set_n_threads(ggml_backend_t backend, int n_threads) {
    static_cast<backend_context *>(backend->context)->n_threads = std::max(1, n_threads);
}

ggml_guid_t backend_guid() {
    static ggml_guid guid = { 0x70, 0x61, 0x6c, 0x69, 0x2d, 0x67, 0x65, 0x6d, 0x6d, 0x2d, 0x63, 0x70, 0x75, 0x2d, 0x76, 0x31 };
    return &guid;
}

const ggml_backend_i backend_iface = {
    /* .get_name            = */ backend_name,
    /* .free                = */ backend_free,
    /* .set_tensor_async    = */ nullptr,
    /* .get_tensor_async    = */ nullptr,
    /* .set_tensor_2d_async = */ nullptr,
    /* .get_tensor_2d_async = */ nullptr,
    /* .cpy_tensor_async    = */ nullptr,
    /* .synchronize         = */ nullptr,
    /* .graph_plan_create   = */ nullptr,
    /* .graph_plan_free     = */ nullptr,
    /* .graph_plan_update   = */ nullptr,
    /* .graph_plan_compute  = */ nullptr,
    /* .graph_compute       = */ backend_graph_compute,
    /* .event_record        = */ nullptr,
    /* .event_wait          = */ nullptr,
    /* .graph_optimize      = */ nullptr,
};

// ---- the device and its registry --------------------------------------------------------------------------------

const char * dev_name(ggml_backend_dev_t) { return "PALI-GEMM"; }
const char * dev_description(ggml_backend_dev_t) { return "pali's matrix product on the CPU (prefill)"; }

void dev_memory(ggml_backend_dev_t, size_t * free, size_t * total) {
    *free = 0; // it owns no memory: the CPU's buffers
    *total = 0;
}

enum ggml_backend_dev_type dev_type(ggml_backend_dev_t) { return GGML_BACKEND_DEVICE_TYPE_ACCEL; }

void dev_props(ggml_backend_dev_t dev, ggml_backend_dev_props * props) {
    props->name = dev_name(dev);
    props->description = dev_description(dev);
    dev_memory(dev, &props->memory_free, &props->memory_total);
    props->type = GGML_BACKEND_DEVICE_TYPE_ACCEL;
    props->device_id = nullptr;
    props->caps = { /* async */ false, /* host_buffer */ false, /* buffer_from_host_ptr */ false, /* events */ false, /* mmap_support */ false };
}

ggml_backend_t dev_init(ggml_backend_dev_t dev, const char *) {
    return new ggml_backend{ backend_guid(), backend_iface, dev, new backend_context() };
}

// The CPU's own: libllama skips an accelerator with this type when it places weights, so they stay where they were.
ggml_backend_buffer_type_t dev_buffer_type(ggml_backend_dev_t) { return ggml_backend_cpu_buffer_type(); }

bool dev_supports_op(ggml_backend_dev_t, const ggml_tensor * op) { return takes(op); }

bool dev_supports_buft(ggml_backend_dev_t, ggml_backend_buffer_type_t buft) { return ggml_backend_buft_is_host(buft); }

const ggml_backend_device_i device_iface = {
    /* .get_name             = */ dev_name,
    /* .get_description      = */ dev_description,
    /* .get_memory           = */ dev_memory,
    /* .get_type             = */ dev_type,
    /* .get_props            = */ dev_props,
    /* .init_backend         = */ dev_init,
    /* .get_buffer_type      = */ dev_buffer_type,
    /* .get_host_buffer_type = */ nullptr,
    /* .buffer_from_host_ptr = */ nullptr,
    /* .supports_op          = */ dev_supports_op,
    /* .supports_buft        = */ dev_supports_buft,
    /* .offload_op           = */ nullptr,
    /* .event_new            = */ nullptr,
    /* .event_free           = */ nullptr,
    /* .event_synchronize    = */ nullptr,
};

const char * reg_name(ggml_backend_reg_t) { return "PALI"; }
size_t reg_device_count(ggml_backend_reg_t) { return 1; }
ggml_backend_dev_t reg_device(ggml_backend_reg_t reg, size_t);

void * reg_proc_address(ggml_backend_reg_t, const char * name) {
    return strcmp(name, "ggml_backend_set_n_threads") == 0 ? reinterpret_cast<void *>(&set_n_threads) : nullptr;
}

const ggml_backend_reg_i reg_iface = { reg_name, reg_device_count, reg_device, reg_proc_address };
ggml_backend_reg registry = { GGML_BACKEND_API_VERSION, reg_iface, nullptr };
ggml_backend_device device = { device_iface, &registry, nullptr };

ggml_backend_dev_t reg_device(ggml_backend_reg_t, size_t) { return &device; }

} // namespace

static std::atomic<bool> registered{ false };

void register_gemm_backend() {
    static std::once_flag once;
    std::call_once(once, [] {
        const char * env = getenv("PALI_TEXT_GEMM");
        if (env != nullptr && strcmp(env, "ggml") == 0) return;
        if (!cpu_gemm_supported() || ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU) == nullptr) return;
        // With a GPU, libllama keeps the CPU's layers' weights in the GPU's host buffers and asks the GPU whether
        // to take their large products (op offload), but only when the CPU backend has them: an accelerator
        // before it would keep them on the CPU. GPU builds keep ggml's products.
        if (ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_GPU) != nullptr || ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_IGPU) != nullptr) return;
        ggml_backend_register(&registry);
        registered = true;
    });
}

bool gemm_backend_registered() { return registered; }

} // namespace pali
