// The shared runner of pali's own ggml graphs: backends, scheduler, threads and abort in one place.
#include "graph_runner.h"

#include "../core/internal.h"

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <cstring>

namespace pali {

namespace {

struct graph_stats {
    int nodes = 0;
    int splits = 0;
    std::map<std::string, int> nodes_by_backend;
    std::map<std::string, size_t> weight_bytes_by_buffer;
};

std::mutex g_stats_mutex;
std::map<std::string, graph_stats> g_stats; // the last run of each graph, by name

// Which backend the scheduler gave each node, and where the weights the nodes read live.
void record_stats(const char * what, ggml_backend_sched_t sched, ggml_cgraph * gf) {
    graph_stats st;
    st.nodes  = ggml_graph_n_nodes(gf);
    st.splits = ggml_backend_sched_get_n_splits(sched);
    std::set<const ggml_tensor *> seen;
    for (int i = 0; i < st.nodes; i++) {
        ggml_tensor *  node    = ggml_graph_node(gf, i);
        ggml_backend_t backend = ggml_backend_sched_get_tensor_backend(sched, node);
        st.nodes_by_backend[backend ? ggml_backend_name(backend) : "none"]++;
        for (int j = 0; j < GGML_MAX_SRC; j++) {
            const ggml_tensor * src = node->src[j];
            if (src == nullptr || src->buffer == nullptr || !seen.insert(src).second) continue;
            if (ggml_backend_buffer_get_usage(src->buffer) != GGML_BACKEND_BUFFER_USAGE_WEIGHTS) continue;
            st.weight_bytes_by_buffer[ggml_backend_buffer_name(src->buffer)] += ggml_nbytes(src);
        }
    }
    std::lock_guard<std::mutex> lock(g_stats_mutex);
    g_stats[what] = std::move(st);
}

std::string json_string(const std::string & s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if ((unsigned char) c >= 0x20) out += c;
    }
    return out + "\"";
}

} // namespace

graph_runner::graph_runner(ggml_backend_dev_t device, size_t graph_size, int n_threads, const volatile int32_t * abort)
    : graph_size_(graph_size), abort_(abort), status_(PALI_OK) {
    ggml_backend_dev_t cpu_dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (cpu_dev == nullptr) {
        status_ = fail(PALI_ERR_BACKEND, "no ggml CPU device; was pali_backend_init called?");
        return;
    }
    if (device != nullptr && device != cpu_dev) {
        ggml_backend_t gpu = ggml_backend_dev_init(device, nullptr);
        if (gpu == nullptr) {
            status_ = fail(PALI_ERR_BACKEND, std::string("could not start the ggml backend of ") + ggml_backend_dev_name(device));
            return;
        }
        backends_.push_back(gpu);
    }
    ggml_backend_t cpu = ggml_backend_dev_init(cpu_dev, nullptr);
    if (cpu == nullptr) {
        status_ = fail(PALI_ERR_BACKEND, "could not start the ggml CPU backend");
        return;
    }
    backends_.push_back(cpu); // last: the scheduler's fallback for ops the device lacks
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(cpu_dev);
    auto set_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads");
    if (set_threads) set_threads(cpu, n_threads > 0 ? n_threads : pali_default_threads());
    auto set_abort = (ggml_backend_set_abort_callback_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_abort_callback");
    if (set_abort && abort != nullptr) {
        // Long graphs (an 896 encode takes over a minute on a small CPU) stop between nodes when asked.
        auto poll = [](void * data) { return *static_cast<const volatile int32_t *>(data) != 0; };
        set_abort(cpu, +poll, const_cast<int32_t *>(abort));
    }
    sched_ = ggml_backend_sched_new(backends_.data(), nullptr, (int) backends_.size(), graph_size, false, true);
    if (sched_ == nullptr) status_ = fail(PALI_ERR_BACKEND, "could not create a ggml scheduler");
}

graph_runner::~graph_runner() {
    if (sched_) ggml_backend_sched_free(sched_);
    for (ggml_backend_t b : backends_) ggml_backend_free(b);
}

int32_t graph_runner::run(const char * what, const std::function<ggml_tensor *(ggml_context *)> & build,
                          const std::function<void()> & upload, const std::function<void(ggml_tensor *)> & download) {
    if (status_ != PALI_OK) return status_;
    if (abort_ != nullptr && *abort_ != 0) return fail(PALI_ERR_ABORTED, std::string(what) + " was aborted");
    const size_t meta = ggml_tensor_overhead() * graph_size_ + ggml_graph_overhead_custom(graph_size_, false);
    std::vector<uint8_t> meta_buf(meta);
    ggml_init_params params = { meta, meta_buf.data(), /*no_alloc =*/ true };
    std::unique_ptr<ggml_context, void (*)(ggml_context *)> ctx(ggml_init(params), ggml_free);
    if (!ctx) return fail(PALI_ERR_OUT_OF_MEMORY, std::string("could not create the graph of ") + what);
    ggml_tensor * res = build(ctx.get());
    ggml_set_output(res);
    ggml_cgraph * gf = ggml_new_graph_custom(ctx.get(), graph_size_, false);
    ggml_build_forward_expand(gf, res);
    ggml_backend_sched_reset(sched_);
    if (!ggml_backend_sched_alloc_graph(sched_, gf)) {
        return fail(PALI_ERR_OUT_OF_MEMORY, std::string("could not allocate the compute buffers of ") + what);
    }
    upload();
    const ggml_status status = ggml_backend_sched_graph_compute(sched_, gf);
    if (status != GGML_STATUS_SUCCESS) {
        const bool aborted = status == GGML_STATUS_ABORTED || (abort_ != nullptr && *abort_ != 0);
        return fail(aborted ? PALI_ERR_ABORTED : PALI_ERR_BACKEND, std::string(what) + (aborted ? " was aborted" : " failed to run"));
    }
    record_stats(what, sched_, gf);
    download(res);
    return PALI_OK;
}

} // namespace pali

extern "C" int32_t pali_graph_stats_json(char ** out_json) {
    if (out_json == nullptr) return pali::fail(PALI_ERR_INVALID_ARGUMENT, "out_json is required");
    std::string json = "[";
    {
        std::lock_guard<std::mutex> lock(pali::g_stats_mutex);
        for (const auto & [name, st] : pali::g_stats) {
            if (json.size() > 1) json += ',';
            json += "{\"graph\":" + pali::json_string(name) + ",\"nodes\":" + std::to_string(st.nodes) +
                    ",\"splits\":" + std::to_string(st.splits) + ",\"nodesByBackend\":{";
            bool first = true;
            for (const auto & [b, n] : st.nodes_by_backend) {
                json += (first ? "" : ",") + pali::json_string(b) + ":" + std::to_string(n);
                first = false;
            }
            json += "},\"weightBytesByBuffer\":{";
            first = true;
            for (const auto & [b, n] : st.weight_bytes_by_buffer) {
                json += (first ? "" : ",") + pali::json_string(b) + ":" + std::to_string(n);
                first = false;
            }
            json += "}}";
        }
    }
    json += "]";
    *out_json = new char[json.size() + 1];
    std::memcpy(*out_json, json.c_str(), json.size() + 1);
    return PALI_OK;
}
