// One log sink for pali, libllama and ggml.
#include "internal.h"

#include "ggml.h"
#include "llama.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace {

std::mutex          g_mutex;
pali_log_callback   g_callback  = nullptr;
void *              g_user_data = nullptr;

// Errors only by default: libllama warns about things users cannot act on (e.g. retyping Gemma's turn
// tokens on every load). PALI_LOG=debug|info|warn|error chooses the level.
pali_log_level default_level() {
    static const pali_log_level level = [] {
        const char * env = getenv("PALI_LOG");
        if (env == nullptr) return PALI_LOG_ERROR;
        if (strcmp(env, "debug") == 0) return PALI_LOG_DEBUG;
        if (strcmp(env, "info") == 0) return PALI_LOG_INFO;
        if (strcmp(env, "warn") == 0) return PALI_LOG_WARN;
        return PALI_LOG_ERROR;
    }();
    return level;
}

void default_sink(pali_log_level level, const char * text, void *) {
    if (level >= default_level()) {
        fputs(text, stderr);
    }
}

void emit(pali_log_level level, const char * text) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_callback) {
        g_callback(level, text, g_user_data);
    } else {
        default_sink(level, text, nullptr);
    }
}

// ggml continues a message with GGML_LOG_LEVEL_CONT; it keeps the level of the line it continues.
std::atomic<int> g_last_level{PALI_LOG_INFO};

thread_local const std::atomic<bool> * t_abort = nullptr;

void ggml_sink(ggml_log_level level, const char * text, void *) {
    pali_log_level l;
    switch (level) {
        case GGML_LOG_LEVEL_DEBUG: l = PALI_LOG_DEBUG; break;
        case GGML_LOG_LEVEL_WARN:  l = PALI_LOG_WARN;  break;
        case GGML_LOG_LEVEL_ERROR: l = PALI_LOG_ERROR; break;
        case GGML_LOG_LEVEL_CONT:  l = (pali_log_level) g_last_level.load(); break;
        default:                   l = PALI_LOG_INFO;  break;
    }
    if (l == PALI_LOG_ERROR && t_abort != nullptr && t_abort->load()) l = PALI_LOG_DEBUG;
    g_last_level = l;
    emit(l, text);
}

} // namespace

namespace pali {

quiet_when_aborted::quiet_when_aborted(const std::atomic<bool> & abort) : previous_(t_abort) { t_abort = &abort; }
quiet_when_aborted::~quiet_when_aborted() { t_abort = previous_; }

void log(pali_log_level level, const char * fmt, ...) {
    char buf[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);
    emit(level, buf);
}

void install_log_sinks() {
    llama_log_set(ggml_sink, nullptr);
    ggml_log_set(ggml_sink, nullptr);
}

} // namespace pali

extern "C" void pali_log_set(pali_log_callback callback, void * user_data) {
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        g_callback  = callback;
        g_user_data = user_data;
    }
    pali::install_log_sinks();
}
