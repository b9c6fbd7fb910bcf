// GGUF metadata and tensor index as ggml's own gguf reader sees them, serialized to JSON.
#include "internal.h"

#include "ggml.h"
#include "gguf.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

void append_json_string(std::string & out, const char * s) {
    out += '"';
    for (const unsigned char * p = (const unsigned char *) s; *p; p++) {
        switch (*p) {
            case '"':  out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (*p < 0x20) {
                    char buf[8];
                    snprintf(buf, sizeof(buf), "\\u%04x", *p);
                    out += buf;
                } else {
                    out += (char) *p;
                }
        }
    }
    out += '"';
}

void append_double(std::string & out, double v, const char * fmt) {
    if (std::isnan(v)) { out += "\"NaN\""; return; }
    if (std::isinf(v)) { out += v > 0 ? "\"Infinity\"" : "\"-Infinity\""; return; }
    char buf[64];
    snprintf(buf, sizeof(buf), fmt, v);
    out += buf;
}

// 64-bit integers are written as strings: JSON numbers lose precision past 2^53.
void append_scalar(std::string & out, gguf_type type, const void * data) {
    char buf[64];
    switch (type) {
        case GGUF_TYPE_UINT8:   snprintf(buf, sizeof(buf), "%u", *(const uint8_t *) data); break;
        case GGUF_TYPE_INT8:    snprintf(buf, sizeof(buf), "%d", *(const int8_t *) data); break;
        case GGUF_TYPE_UINT16:  snprintf(buf, sizeof(buf), "%u", *(const uint16_t *) data); break;
        case GGUF_TYPE_INT16:   snprintf(buf, sizeof(buf), "%d", *(const int16_t *) data); break;
        case GGUF_TYPE_UINT32:  snprintf(buf, sizeof(buf), "%" PRIu32, *(const uint32_t *) data); break;
        case GGUF_TYPE_INT32:   snprintf(buf, sizeof(buf), "%" PRId32, *(const int32_t *) data); break;
        case GGUF_TYPE_UINT64:  snprintf(buf, sizeof(buf), "\"%" PRIu64 "\"", *(const uint64_t *) data); break;
        case GGUF_TYPE_INT64:   snprintf(buf, sizeof(buf), "\"%" PRId64 "\"", *(const int64_t *) data); break;
        case GGUF_TYPE_BOOL:    snprintf(buf, sizeof(buf), "%s", *(const int8_t *) data ? "true" : "false"); break;
        case GGUF_TYPE_FLOAT32: append_double(out, (double) *(const float *) data, "%.17g"); return;
        case GGUF_TYPE_FLOAT64: append_double(out, *(const double *) data, "%.17g"); return;
        default:                snprintf(buf, sizeof(buf), "null"); break;
    }
    out += buf;
}

size_t scalar_size(gguf_type type) {
    switch (type) {
        case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
        case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
        case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
        default: return 8;
    }
}

std::string to_json(const gguf_context * ctx) {
    std::string out;
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"version\":%u,\"alignment\":%zu,\"dataOffset\":%zu,\"kv\":[",
             gguf_get_version(ctx), gguf_get_alignment(ctx), gguf_get_data_offset(ctx));
    out += buf;
    for (int64_t i = 0; i < gguf_get_n_kv(ctx); i++) {
        if (i > 0) out += ',';
        const gguf_type type = gguf_get_kv_type(ctx, i);
        out += "{\"key\":";
        append_json_string(out, gguf_get_key(ctx, i));
        out += ",\"type\":";
        append_json_string(out, gguf_type_name(type));
        out += ",\"value\":";
        if (type == GGUF_TYPE_STRING) {
            append_json_string(out, gguf_get_val_str(ctx, i));
        } else if (type == GGUF_TYPE_ARRAY) {
            const gguf_type item = gguf_get_arr_type(ctx, i);
            const size_t n = gguf_get_arr_n(ctx, i);
            out += '[';
            for (size_t j = 0; j < n; j++) {
                if (j > 0) out += ',';
                if (item == GGUF_TYPE_STRING) {
                    append_json_string(out, gguf_get_arr_str(ctx, i, j));
                } else {
                    append_scalar(out, item, (const char *) gguf_get_arr_data(ctx, i) + j * scalar_size(item));
                }
            }
            out += "],\"itemType\":";
            append_json_string(out, gguf_type_name(item));
        } else {
            append_scalar(out, type, gguf_get_val_data(ctx, i));
        }
        out += '}';
    }
    out += "],\"tensors\":[";
    for (int64_t i = 0; i < gguf_get_n_tensors(ctx); i++) {
        if (i > 0) out += ',';
        const int64_t * ne = gguf_get_tensor_ne(ctx, i);
        out += "{\"name\":";
        append_json_string(out, gguf_get_tensor_name(ctx, i));
        out += ",\"type\":";
        append_json_string(out, ggml_type_name(gguf_get_tensor_type(ctx, i)));
        snprintf(buf, sizeof(buf), ",\"ne\":[%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "],\"offset\":%zu,\"size\":%zu}",
                 ne[0], ne[1], ne[2], ne[3], gguf_get_tensor_offset(ctx, i), gguf_get_tensor_size(ctx, i));
        out += buf;
    }
    out += "]}";
    return out;
}

} // namespace

extern "C" int32_t pali_gguf_metadata_json(const char * path, char ** out_json) {
    return pali::guard("pali_gguf_metadata_json", [&]() -> int32_t {
        if (path == nullptr || out_json == nullptr) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "path and out_json are required");
        }
        *out_json = nullptr;
        gguf_init_params params = { /*no_alloc =*/ true, /*ctx =*/ nullptr };
        gguf_context * ctx = gguf_init_from_file(path, params);
        if (ctx == nullptr) {
            return pali::fail(PALI_ERR_MODEL_FORMAT, std::string("ggml could not read GGUF file ") + path);
        }
        std::string json;
        try {
            json = to_json(ctx);
        } catch (...) {
            gguf_free(ctx);
            throw;
        }
        gguf_free(ctx);
        char * copy = new char[json.size() + 1];
        memcpy(copy, json.c_str(), json.size() + 1);
        *out_json = copy;
        return PALI_OK;
    });
}
