// Status names and the per-thread last error.
#include "internal.h"

namespace {
thread_local std::string g_last_error;
}

namespace pali {

int32_t fail(int32_t status, const std::string & msg) {
    g_last_error = msg;
    return status;
}

void clear_error() { g_last_error.clear(); }

} // namespace pali

extern "C" {

const char * pali_status_name(int32_t status) {
    switch (status) {
        case PALI_OK:                    return "PALI_OK";
        case PALI_ERR_INVALID_ARGUMENT:  return "PALI_ERR_INVALID_ARGUMENT";
        case PALI_ERR_MODEL_FORMAT:      return "PALI_ERR_MODEL_FORMAT";
        case PALI_ERR_UNSUPPORTED_MODEL: return "PALI_ERR_UNSUPPORTED_MODEL";
        case PALI_ERR_BACKEND:           return "PALI_ERR_BACKEND";
        case PALI_ERR_ABORTED:           return "PALI_ERR_ABORTED";
        case PALI_ERR_OUT_OF_MEMORY:     return "PALI_ERR_OUT_OF_MEMORY";
        case PALI_ERR_IO:                return "PALI_ERR_IO";
        case PALI_ERR_CONTEXT_OVERFLOW:  return "PALI_ERR_CONTEXT_OVERFLOW";
        case PALI_ERR_DISPOSED:          return "PALI_ERR_DISPOSED";
        case PALI_ERR_INTERNAL:          return "PALI_ERR_INTERNAL";
        default:                         return "PALI_ERR_UNKNOWN";
    }
}

const char * pali_last_error(void) { return g_last_error.c_str(); }

void pali_string_free(char * s) { delete[] s; }

} // extern "C"
