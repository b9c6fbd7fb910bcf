// Internal helpers shared by the core's translation units.
#pragma once

#include <atomic>

#include "pali.h"

#include "ggml.h"

#include <string>

namespace pali {

// Records msg as this thread's last error and returns status, so that callers can `return fail(...)`.
int32_t fail(int32_t status, const std::string & msg);

// Clears this thread's last error.
void clear_error();

// The ggml type whose name matches (case-insensitively: "q4_K", "q4_k"), or GGML_TYPE_COUNT.
ggml_type type_by_name(const char * name);

// Logs through the callback set with pali_log_set().
void log(pali_log_level level, const char * fmt, ...);

// Runs fn and turns any C++ exception into a status, so nothing throws across the C API.
template <typename F>
int32_t guard(const char * what, F && fn) {
    try {
        clear_error();
        return fn();
    } catch (const std::bad_alloc &) {
        return fail(PALI_ERR_OUT_OF_MEMORY, std::string(what) + ": out of memory");
    } catch (const std::exception & e) {
        return fail(PALI_ERR_INTERNAL, std::string(what) + ": " + e.what());
    } catch (...) {
        return fail(PALI_ERR_INTERNAL, std::string(what) + ": unknown error");
    }
}

} // namespace pali

namespace pali {
// Routes libllama's and ggml's logs into pali's sink.
void install_log_sinks();

// While one lives on a thread, the errors ggml and libllama log there after `abort` became true are logged
// at debug level: a computation pali stopped on purpose (abort, dispose) is not an error to print.
class quiet_when_aborted {
  public:
    explicit quiet_when_aborted(const std::atomic<bool> & abort);
    ~quiet_when_aborted();
    quiet_when_aborted(const quiet_when_aborted &) = delete;
    quiet_when_aborted & operator=(const quiet_when_aborted &) = delete;

  private:
    const std::atomic<bool> * previous_;
};
} // namespace pali
