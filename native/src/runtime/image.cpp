// Image preprocessing exactly as PIL does it: convert to RGB, resize with Image.BICUBIC (a = -0.5, support
// scaled by the reduction factor, 22-bit fixed-point coefficients, horizontal pass then vertical pass, each
// rounded to 8 bits), then (x/255 - 0.5)/0.5 into channel planes.
#include "../core/internal.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr int PRECISION_BITS = 32 - 8 - 2;

double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

struct coeffs {
    int                  ksize = 0;
    std::vector<int>     bounds; // per output: first input index, count
    std::vector<int32_t> k;      // per output: ksize fixed-point weights
};

coeffs precompute(int in_size, int out_size) {
    coeffs c;
    const double scale = (double) in_size / out_size;
    const double filterscale = std::max(scale, 1.0);
    const double support = 2.0 * filterscale;
    c.ksize = (int) std::ceil(support) * 2 + 1;
    c.bounds.resize(out_size * 2);
    c.k.assign((size_t) out_size * c.ksize, 0);
    std::vector<double> w(c.ksize);
    for (int xx = 0; xx < out_size; xx++) {
        const double center = (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int xmin = (int) (center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int) (center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = bicubic((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            const double v = ww != 0.0 ? w[x] / ww : w[x];
            c.k[(size_t) xx * c.ksize + x] = v < 0 ? (int32_t) (-0.5 + v * (1 << PRECISION_BITS)) : (int32_t) (0.5 + v * (1 << PRECISION_BITS));
        }
        c.bounds[xx * 2] = xmin;
        c.bounds[xx * 2 + 1] = xmax;
    }
    return c;
}

inline uint8_t clip8(int64_t v) {
    if (v >= ((int64_t) 1 << PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t) (v >> PRECISION_BITS);
}

} // namespace

extern "C" int32_t pali_image_preprocess(const uint8_t * rgb, int32_t width, int32_t height, int32_t size, float * out) {
    return pali::guard("pali_image_preprocess", [&]() -> int32_t {
        if (rgb == nullptr || out == nullptr || width <= 0 || height <= 0 || size <= 0) {
            return pali::fail(PALI_ERR_INVALID_ARGUMENT, "an RGB image of positive size and a positive target size are required");
        }
        const coeffs ch = precompute(width, size);
        const coeffs cv = precompute(height, size);
        // Rows the vertical pass reads; the horizontal pass only computes those.
        const int y_first = cv.bounds[0];
        const int y_last = cv.bounds[(size - 1) * 2] + cv.bounds[(size - 1) * 2 + 1];
        const bool need_h = width != size;
        const bool need_v = height != size;

        std::vector<uint8_t> tmp;
        const uint8_t * src = rgb;
        int src_w = width, row0 = 0;
        if (need_h) {
            const int rows = y_last - y_first;
            tmp.resize((size_t) rows * size * 3);
            for (int y = 0; y < rows; y++) {
                const uint8_t * in = rgb + (size_t) (y + y_first) * width * 3;
                uint8_t * o = tmp.data() + (size_t) y * size * 3;
                for (int xx = 0; xx < size; xx++) {
                    const int xmin = ch.bounds[xx * 2], xmax = ch.bounds[xx * 2 + 1];
                    const int32_t * k = &ch.k[(size_t) xx * ch.ksize];
                    int64_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
                    for (int x = 0; x < xmax; x++) {
                        const uint8_t * p = in + (size_t) (x + xmin) * 3;
                        s0 += (int64_t) p[0] * k[x];
                        s1 += (int64_t) p[1] * k[x];
                        s2 += (int64_t) p[2] * k[x];
                    }
                    o[xx * 3] = clip8(s0);
                    o[xx * 3 + 1] = clip8(s1);
                    o[xx * 3 + 2] = clip8(s2);
                }
            }
            src = tmp.data();
            src_w = size;
            row0 = y_first;
        }
        const size_t plane = (size_t) size * size;
        for (int yy = 0; yy < size; yy++) {
            for (int xx = 0; xx < src_w; xx++) {
                uint8_t px[3];
                if (need_v) {
                    const int ymin = cv.bounds[yy * 2] - row0, ymax = cv.bounds[yy * 2 + 1];
                    const int32_t * k = &cv.k[(size_t) yy * cv.ksize];
                    int64_t s[3] = { 1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1) };
                    for (int y = 0; y < ymax; y++) {
                        const uint8_t * p = src + ((size_t) (y + ymin) * src_w + xx) * 3;
                        for (int c = 0; c < 3; c++) s[c] += (int64_t) p[c] * k[y];
                    }
                    for (int c = 0; c < 3; c++) px[c] = clip8(s[c]);
                } else {
                    const uint8_t * p = src + ((size_t) (yy + y_first - row0) * src_w + xx) * 3;
                    px[0] = p[0], px[1] = p[1], px[2] = p[2];
                }
                for (int c = 0; c < 3; c++) out[c * plane + (size_t) yy * size + xx] = ((float) px[c] / 255.0f - 0.5f) / 0.5f;
            }
        }
        return PALI_OK;
    });
}
