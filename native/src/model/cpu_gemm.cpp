// pali's matrix product on x86 CPUs with AVX2, FMA and F16C: a cache-blocked product (the layout of BLIS's
// kernels) for the vision tower's linear layers and, through gemm_backend.cpp, the decoder's prefill. ggml's CPU
// backend runs these shapes (K = 1152 or 4304, N up to 4304, M = tokens) at a third to a half of the cores'
// rate, and rounds the activations to f16 for f16 weights or quantizes them to q8_0 for q8_0 weights
// (benchmarks/src/gemm.mjs has the same-run numbers). Here each tile of the output stays in registers while a
// 16-row weight panel, packed once per block of K, streams from L1. Three kernels: 6×16 tiles of f32 FMAs on
// AVX2 and 12×16 on AVX-512, weights widened to f32 as they are packed; and 12×16 tiles of VDPBF16PS for bf16
// weights where the CPU has AVX512_BF16. A tile's last block of K can add the bias, apply the GELU and place
// attention heads with their zero padding as it is stored (epilogue, head_layout).
#include "cpu_gemm.h"

#include "ggml-backend.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PALI_GEMM_X86 1
#include <immintrin.h>
#define PALI_AVX2 __attribute__((target("avx2,fma,f16c")))
#define PALI_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw")))
#define PALI_AVX512BF16 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512bf16")))
#endif

namespace pali {

#ifdef PALI_GEMM_X86
namespace {

constexpr int NR = 16;        // output columns of a tile: two registers of 8 floats
constexpr int MR = 6;         // output rows (tokens) of a tile: 6 × 2 accumulators + 2 weights + 1 broadcast ≤ 16 registers
constexpr int KC = 256;       // K columns per packed panel: a 16-row panel is 16 KiB, in L1 (a multiple of q8_0's 32)
constexpr int MC = 192;       // token rows per pass over a panel chunk: 192 KiB of activations, in L2
constexpr int CHUNK = 16;     // panels packed together: 256 KiB, in L2 beside the activations

struct q8_0_block {
    uint16_t d;               // fp16 scale
    int8_t   qs[32];
};
static_assert(sizeof(q8_0_block) == 34, "ggml's block_q8_0");

PALI_AVX2 inline void transpose8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Eight consecutive values of a weight row from column k (k a multiple of 8), widened to f32.
PALI_AVX2 inline __m256 load8(ggml_type type, const uint8_t * row, int64_t k) {
    switch (type) {
        case GGML_TYPE_F32:
            return _mm256_loadu_ps(reinterpret_cast<const float *>(row) + k);
        case GGML_TYPE_F16:
            return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(row + 2 * k)));
        case GGML_TYPE_BF16: {
            const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(row + 2 * k)));
            return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
        }
        default: { // q8_0: 8 values never straddle a block of 32
            const q8_0_block * b = reinterpret_cast<const q8_0_block *>(row) + k / 32;
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(b->qs + k % 32)));
            return _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(_cvtsh_ss(b->d)));
        }
    }
}

// One value, for the columns past the last multiple of 8 (q8_0 rows are whole blocks, so never q8_0).
PALI_AVX2 inline float load1(ggml_type type, const uint8_t * row, int64_t k) {
    switch (type) {
        case GGML_TYPE_F32: return reinterpret_cast<const float *>(row)[k];
        case GGML_TYPE_F16: return _cvtsh_ss(reinterpret_cast<const uint16_t *>(row)[k]);
        default: {
            const uint32_t bits = (uint32_t) reinterpret_cast<const uint16_t *>(row)[k] << 16;
            float f;
            std::memcpy(&f, &bits, sizeof f);
            return f;
        }
    }
}

// What a tile does to its finished sums on the last block of K: add the bias, then the tanh GELU of SigLIP's MLP.
struct epilogue {
    const float * bias = nullptr; // N floats, or none
    bool gelu = false;
};

// Where output column c goes: with heads of hd columns (a multiple of 8), each head is followed by `pad` zero
// columns up to a multiple of 16, the rows ggml's flash attention reads fastest; else at c.
struct head_layout {
    int64_t hd = 0, pad = 0;
    int64_t at(int64_t c) const { return hd != 0 ? c + c / hd * pad : c; }
    bool ends_head(int64_t c) const { return pad != 0 && c % hd == 0; } // c: the column after a group of 8
};

// The op's parameters in its userdata word: the GELU flag and the head width of a padded layout.
struct op_params {
    epilogue ep;
    head_layout heads;
    op_params(const ggml_tensor * dst, void * userdata) {
        const uintptr_t word = reinterpret_cast<uintptr_t>(userdata);
        ep.bias = dst->src[2] != nullptr ? static_cast<const float *>(dst->src[2]->data) : nullptr;
        ep.gelu = (word & 1) != 0;
        heads.hd = (int64_t) (word >> 1);
        heads.pad = heads.hd != 0 ? (16 - heads.hd % 16) % 16 : 0;
    }
};

// gelu_pytorch_tanh(v) = v · (1 + tanh(u)) / 2 with u = √(2/π)·(v + 0.044715·v³), written as v / (1 + e^(−2u)),
// e^x by Cody and Waite's reduction and Cephes' degree-5 polynomial (about 1 ulp on the reduced range).
constexpr float GELU_C = -2.0f * 0.7978845608028654f, GELU_A = 0.044715f;
constexpr float EXP_HI = 88.3762626647949f, EXP_LO = -87.3365447505531f, LOG2E = 1.44269504088896341f;
constexpr float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
constexpr float EXP_P[6] = { 1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f };

PALI_AVX2 inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 y = _mm256_set1_ps(EXP_P[0]);
    for (int i = 1; i < 6; i++) y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P[i]));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

PALI_AVX2 inline __m256 gelu8(__m256 v) {
    const __m256 u = _mm256_mul_ps(_mm256_mul_ps(v, _mm256_fmadd_ps(_mm256_mul_ps(v, v), _mm256_set1_ps(GELU_A), _mm256_set1_ps(1.0f))),
                                   _mm256_set1_ps(GELU_C));
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(u)));
}

PALI_AVX2 inline __m256 finish8(__m256 v, const epilogue * ep, int64_t col) {
    if (ep == nullptr) return v;
    if (ep->bias != nullptr) v = _mm256_add_ps(v, _mm256_loadu_ps(ep->bias + col));
    return ep->gelu ? gelu8(v) : v;
}

// Weight rows n0..n0+15, columns k0..k0+kc, as f32 in the order the tile reads them: panel[k][16].
PALI_AVX2 void pack_panel(const ggml_tensor * w, int64_t n0, int64_t k0, int kc, float * panel) {
    const uint8_t * base = static_cast<const uint8_t *>(w->data) + n0 * w->nb[1];
    int k = 0;
    for (; k + 8 <= kc; k += 8) {
        for (int half = 0; half < 2; half++) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) r[j] = load8(w->type, base + (half * 8 + j) * w->nb[1], k0 + k);
            transpose8(r);
            for (int i = 0; i < 8; i++) _mm256_store_ps(panel + (k + i) * NR + half * 8, r[i]);
        }
    }
    for (; k < kc; k++) {
        for (int j = 0; j < NR; j++) panel[k * NR + j] = load1(w->type, base + j * w->nb[1], k0 + k);
    }
}

// out[r][col..col+15] (+)= Σ_k x[r][k] · panel[k][0..15] for ROWS token rows of x (stride ldx) and of out (stride
// ldo, columns placed by hl); ep (the last block of K only) finishes the sums.
template <int ROWS>
PALI_AVX2 void tile(int kc, const float * x, int64_t ldx, const float * panel, float * out, int64_t ldo, bool first, const epilogue * ep, int64_t col,
                    const head_layout & hl) {
    __m256 acc[ROWS][2];
    for (int r = 0; r < ROWS; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(panel + k * NR), b1 = _mm256_load_ps(panel + k * NR + 8);
        for (int r = 0; r < ROWS; r++) {
            const __m256 a = _mm256_broadcast_ss(x + r * ldx + k);
            acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
        }
    }
    const int64_t at0 = hl.at(col), at1 = hl.at(col + 8);
    for (int r = 0; r < ROWS; r++) {
        float * o = out + r * ldo;
        if (!first) {
            acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(o + at0));
            acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(o + at1));
        }
        _mm256_storeu_ps(o + at0, finish8(acc[r][0], ep, col));
        _mm256_storeu_ps(o + at1, finish8(acc[r][1], ep, col + 8));
        if (first && hl.ends_head(col + 8)) _mm256_storeu_ps(o + at0 + 8, _mm256_setzero_ps());
        if (first && hl.ends_head(col + 16)) _mm256_storeu_ps(o + at1 + 8, _mm256_setzero_ps());
    }
}

// A kernel's parts: its panel packing (K values k0..k0+kc of 16 weight rows from n0) and its tiles, one for each
// row count up to its tile height (tiles[rows - 1]). X: the activations' element; P: a panel word, which holds
// `values` K values (1 for f32, 2 for bf16 pairs).
template <typename X, typename P> using pack_fn = void (*)(const ggml_tensor * w, int64_t n0, int64_t k0, int kc, P * panel);
template <typename X, typename P>
using tile_fn = void (*)(int kc, const X * x, int64_t ldx, const P * panel, float * out, int64_t ldo, bool first, const epilogue * ep, int64_t col,
                         const head_layout & hl);

template <typename X, typename P> struct kernel {
    int kc, values, mr;
    pack_fn<X, P> pack;
    const tile_fn<X, P> * tiles;
};

// Every kernel's custom op: thread ith of nth computes its share of the 16-column panels of dst, for every token.
// CHUNK panels are packed per block of K and reused for all tokens, MC at a time.
template <typename X, typename P> void run_kernel(ggml_tensor * dst, int ith, int nth, void * userdata, const kernel<X, P> & kn) {
    const ggml_tensor * w = dst->src[0];
    const ggml_tensor * x = dst->src[1];
    const op_params op(dst, userdata);
    const int64_t ldo = dst->ne[0];
    const int64_t K = w->ne[0], N = w->ne[1], M = x->ne[1];
    const int64_t panels = N / NR, p_begin = panels * ith / nth, p_end = panels * (ith + 1) / nth;
    if (p_begin == p_end) return;
    thread_local std::vector<P> scratch;
    scratch.resize((size_t) CHUNK * (kn.kc / kn.values) * NR + 64 / sizeof(P));
    P * packed = reinterpret_cast<P *>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
    const X * xd = static_cast<const X *>(x->data);
    float * out = static_cast<float *>(dst->data);
    for (int64_t c0 = p_begin; c0 < p_end; c0 += CHUNK) {
        const int64_t c1 = std::min(p_end, c0 + CHUNK);
        for (int64_t k0 = 0; k0 < K; k0 += kn.kc) {
            const int kc = (int) std::min<int64_t>(kn.kc, K - k0);
            const int64_t words = (int64_t) (kc / kn.values) * NR; // one packed panel
            for (int64_t p = c0; p < c1; p++) kn.pack(w, p * NR, k0, kc, packed + (p - c0) * words);
            for (int64_t m0 = 0; m0 < M; m0 += MC) {
                const int64_t m1 = std::min(M, m0 + MC);
                for (int64_t p = c0; p < c1; p++) {
                    for (int64_t m = m0; m < m1; m += kn.mr) {
                        kn.tiles[std::min<int64_t>(kn.mr, m1 - m) - 1](kc, xd + m * K + k0, K, packed + (p - c0) * words, out + m * ldo, ldo, k0 == 0,
                                                                       k0 + kc == K ? &op.ep : nullptr, p * NR, op.heads);
                    }
                }
            }
        }
    }
}

template <size_t... R> constexpr std::array<tile_fn<float, float>, sizeof...(R)> avx2_tiles(std::index_sequence<R...>) { return { { &tile<R + 1>... } }; }

void gemm_op(ggml_tensor * dst, int ith, int nth, void * userdata) {
    static constexpr auto tiles = avx2_tiles(std::make_index_sequence<MR>());
    run_kernel(dst, ith, nth, userdata, kernel<float, float>{ KC, 1, MR, pack_panel, tiles.data() });
}


// bf16 weights on CPUs with AVX512_BF16: the activations are rounded to bf16 (by a ggml cast node before the op,
// as ggml's own bf16 product does) and each VDPBF16PS multiplies 16 columns by a pair of K values, twice the f32
// FMA rate. A panel holds 16 weight rows as pairs: panel[p][col] = (w[col][2p], w[col][2p + 1]), one register per p.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push // GCC 12's AVX-512 headers trip it on their own _mm512_undefined_epi32()
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
constexpr int MR16 = 12;      // token rows of a bf16 tile: 12 accumulators, one weight register, one broadcast
constexpr int KC16 = 512;     // K columns per bf16 panel: 16 KiB, in L1

// The 16 × 16 transpose of 32-bit elements: r[j][p] → r[p][j].
PALI_AVX512BF16 inline void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { // u[4i + q], 128-bit lane L: element 4L + q of rows 4i..4i+3
        u[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int q = 0; q < 4; q++) { // the 4 × 4 transpose of 128-bit lanes across u[q], u[4 + q], u[8 + q], u[12 + q]
        const __m512i s0 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0x44), s1 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0xEE);
        const __m512i s2 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0x44), s3 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0xEE);
        r[q] = _mm512_shuffle_i32x4(s0, s2, 0x88);
        r[4 + q] = _mm512_shuffle_i32x4(s0, s2, 0xDD);
        r[8 + q] = _mm512_shuffle_i32x4(s1, s3, 0x88);
        r[12 + q] = _mm512_shuffle_i32x4(s1, s3, 0xDD);
    }
}

// Weight rows n0..n0+15, columns k0..k0+kc (k0 and kc even), as panel[p][16] of bf16 pairs.
PALI_AVX512BF16 void pack_panel_bf16(const ggml_tensor * w, int64_t n0, int64_t k0, int kc, uint32_t * panel) {
    const uint8_t * base = static_cast<const uint8_t *>(w->data) + n0 * w->nb[1] + 2 * k0;
    const int kp = kc / 2;
    int p = 0;
    for (; p + 16 <= kp; p += 16) {
        __m512i r[16];
        for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_si512(base + j * w->nb[1] + 4 * p);
        transpose16(r);
        for (int i = 0; i < 16; i++) _mm512_store_si512(panel + (p + i) * NR, r[i]);
    }
    for (; p < kp; p++) {
        for (int j = 0; j < NR; j++) std::memcpy(panel + p * NR + j, base + j * w->nb[1] + 4 * p, 4);
    }
}

PALI_AVX512 inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EXP_LO)), _mm512_set1_ps(EXP_HI));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 y = _mm512_set1_ps(EXP_P[0]);
    for (int i = 1; i < 6; i++) y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(EXP_P[i]));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
}

PALI_AVX512 inline __m512 finish16(__m512 v, const epilogue * ep, int64_t col) {
    if (ep == nullptr) return v;
    if (ep->bias != nullptr) v = _mm512_add_ps(v, _mm512_loadu_ps(ep->bias + col));
    if (!ep->gelu) return v;
    const __m512 u = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_fmadd_ps(_mm512_mul_ps(v, v), _mm512_set1_ps(GELU_A), _mm512_set1_ps(1.0f))),
                                   _mm512_set1_ps(GELU_C));
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(u)));
}

PALI_AVX512 inline __m512 join8(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}

// Stores (or adds to) ROWS rows of 16 output columns from col, placed by hl, finished by ep.
template <int ROWS>
PALI_AVX512 inline void store_rows16(__m512 * acc, float * out, int64_t ldo, bool first, const epilogue * ep, int64_t col, const head_layout & hl) {
    const int64_t at0 = hl.at(col), at1 = hl.at(col + 8);
    for (int r = 0; r < ROWS; r++) {
        float * o = out + r * ldo;
        if (at1 == at0 + 8) { // the 16 columns are together
            if (!first) acc[r] = _mm512_add_ps(acc[r], _mm512_loadu_ps(o + at0));
            _mm512_storeu_ps(o + at0, finish16(acc[r], ep, col));
        } else {              // a head ends after the first 8: its padding comes between
            if (!first) acc[r] = _mm512_add_ps(acc[r], join8(_mm256_loadu_ps(o + at0), _mm256_loadu_ps(o + at1)));
            const __m512 v = finish16(acc[r], ep, col);
            _mm256_storeu_ps(o + at0, _mm512_castps512_ps256(v));
            _mm256_storeu_ps(o + at1, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        }
        if (first && hl.ends_head(col + 8)) _mm256_storeu_ps(o + at0 + 8, _mm256_setzero_ps());
        if (first && hl.ends_head(col + 16)) _mm256_storeu_ps(o + at1 + 8, _mm256_setzero_ps());
    }
}

template <int ROWS>
PALI_AVX512BF16 void tile_bf16(int kc, const uint16_t * x, int64_t ldx, const uint32_t * panel, float * out, int64_t ldo, bool first,
                               const epilogue * ep, int64_t col, const head_layout & hl) {
    const int kp = kc / 2;
    __m512 acc[ROWS];
    for (int r = 0; r < ROWS; r++) acc[r] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int p = 0; p < kp; p++) {
        const __m512bh b = (__m512bh) _mm512_load_si512(panel + p * NR);
        for (int r = 0; r < ROWS; r++) {
            int32_t pair;
            std::memcpy(&pair, x + r * ldx + 2 * p, 4);
            acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh) _mm512_set1_epi32(pair), b);
        }
    }
    store_rows16<ROWS>(acc, out, ldo, first, ep, col, hl);
}

template <size_t... R> constexpr std::array<tile_fn<uint16_t, uint32_t>, sizeof...(R)> bf16_tiles(std::index_sequence<R...>) {
    return { { &tile_bf16<R + 1>... } };
}

// The custom op for bf16: src[0] the bf16 weights, src[1] the activations cast to bf16.
void gemm_op_bf16(ggml_tensor * dst, int ith, int nth, void * userdata) {
    static constexpr auto tiles = bf16_tiles(std::make_index_sequence<MR16>());
    run_kernel(dst, ith, nth, userdata, kernel<uint16_t, uint32_t>{ KC16, 2, MR16, pack_panel_bf16, tiles.data() });
}

// Weights widened to f32 (the avx2-f32 kernel's panels) on CPUs with AVX-512: one 16-float register per row of a
// tile, 12 rows, and twice the FMA width where the cores have it (Zen 4 splits it in two: the same rate there).
template <int ROWS>
PALI_AVX512 void tile_f32x16(int kc, const float * x, int64_t ldx, const float * panel, float * out, int64_t ldo, bool first, const epilogue * ep,
                             int64_t col, const head_layout & hl) {
    __m512 acc[ROWS];
    for (int r = 0; r < ROWS; r++) acc[r] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        const __m512 b = _mm512_load_ps(panel + k * NR);
        for (int r = 0; r < ROWS; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[r * ldx + k]), b, acc[r]);
    }
    store_rows16<ROWS>(acc, out, ldo, first, ep, col, hl);
}

template <size_t... R> constexpr std::array<tile_fn<float, float>, sizeof...(R)> f32x16_tiles(std::index_sequence<R...>) {
    return { { &tile_f32x16<R + 1>... } };
}

void gemm_op_f32x16(ggml_tensor * dst, int ith, int nth, void * userdata) {
    static constexpr auto tiles = f32x16_tiles(std::make_index_sequence<MR16>());
    run_kernel(dst, ith, nth, userdata, kernel<float, float>{ KC, 1, MR16, pack_panel, tiles.data() });
}
PALI_AVX512BF16 void round_bf16(const float * x, uint16_t * y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)); // nearest even, as ggml's cast
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(y + i), (__m256i) h);
    }
    for (; i < n; i++) {
        uint32_t bits;
        std::memcpy(&bits, x + i, 4);
        y[i] = (uint16_t) ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

} // namespace

bool cpu_gemm_supported() {
    static const bool supported = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }();
    return supported;
}

// PALI_GEMM_ISA=avx2 keeps an AVX-512 CPU to the AVX2 kernel: the other machine kind's numbers, on this one.
static bool has_avx512() {
    static const bool has = [] {
        __builtin_cpu_init();
        const char * isa = getenv("PALI_GEMM_ISA");
        if (isa != nullptr && strcmp(isa, "avx2") == 0) return false;
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    }();
    return has;
}

static bool has_avx512_bf16() {
    static const bool has = [] { return has_avx512() && __builtin_cpu_supports("avx512bf16"); }();
    return has;
}

const char * cpu_gemm_kernel(const ggml_tensor * w) {
    if (!cpu_gemm_supported()) return nullptr;
    if (w->type == GGML_TYPE_BF16 && w->ne[0] % 2 == 0 && has_avx512_bf16()) return "avx512-bf16";
    return has_avx512() ? "avx512-f32" : "avx2-f32";
}

bool cpu_gemm_wanted(const ggml_tensor * w) {
    // Measured faster than ggml's for every type it takes, at the tower's shapes and in whole encodes, on an
    // AVX2-only CPU (Zen 3) and an AVX-512 one (Zen 4) (benchmarks/README.md, "pali's product"). Weights that an
    // extra buffer type holds (AMX tiles, repacked layouts) are not taken: ggml's kernels for those stay.
    static const bool off = [] {
        const char * env = getenv("PALI_VISION_GEMM");
        return env != nullptr && strcmp(env, "ggml") == 0;
    }();
    return !off && cpu_gemm_takes(w);
}

bool cpu_gemm_takes(const ggml_tensor * w) {
    const bool type_ok = w->type == GGML_TYPE_F32 || w->type == GGML_TYPE_F16 || w->type == GGML_TYPE_BF16 || w->type == GGML_TYPE_Q8_0;
    return cpu_gemm_supported() && type_ok && ggml_n_dims(w) <= 2 && ggml_is_contiguous(w) && w->ne[1] % NR == 0 && w->buffer != nullptr &&
           w->extra == nullptr && ggml_backend_buffer_is_host(w->buffer);
}

bool cpu_gemm_fuses(const ggml_tensor * w, const ggml_tensor * b) {
    return b != nullptr && b->type == GGML_TYPE_F32 && ggml_is_contiguous(b) && ggml_nelements(b) == w->ne[1] && b->buffer != nullptr &&
           ggml_backend_buffer_is_host(b->buffer);
}

cpu_gemm_fn cpu_gemm_function(const ggml_tensor * w) {
    const char * kernel = cpu_gemm_kernel(w);
    if (strcmp(kernel, "avx512-bf16") == 0) return gemm_op_bf16;
    return strcmp(kernel, "avx512-f32") == 0 ? gemm_op_f32x16 : gemm_op;
}

void cpu_gemm_round_bf16(const float * x, uint16_t * y, int64_t n) { round_bf16(x, y, n); }

bool cpu_gemm_pads(const ggml_tensor * w, int64_t head) {
    return head > 0 && head % 8 == 0 && w->ne[1] % head == 0;
}

ggml_tensor * cpu_gemm(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, ggml_tensor * b, bool gelu, int64_t head) {
    if (!cpu_gemm_pads(w, head)) head = 0;
    void * userdata = reinterpret_cast<void *>((uintptr_t(head) << 1) | uintptr_t(gelu));
    const int64_t n_out = head != 0 ? w->ne[1] / head * (head + (16 - head % 16) % 16) : w->ne[1];
    const int n_args = b != nullptr ? 3 : 2;
    if (strcmp(cpu_gemm_kernel(w), "avx512-bf16") == 0) {
        ggml_tensor * args[3] = { w, ggml_cast(ctx, x, GGML_TYPE_BF16), b };
        return ggml_custom_4d(ctx, GGML_TYPE_F32, n_out, x->ne[1], 1, 1, args, n_args, gemm_op_bf16, GGML_N_TASKS_MAX, userdata);
    }
    if (!ggml_is_contiguous(x)) x = ggml_cont(ctx, x);
    ggml_tensor * args[3] = { w, x, b };
    const ggml_custom_op_t op = strcmp(cpu_gemm_kernel(w), "avx512-f32") == 0 ? gemm_op_f32x16 : gemm_op;
    return ggml_custom_4d(ctx, GGML_TYPE_F32, n_out, x->ne[1], 1, 1, args, n_args, op, GGML_N_TASKS_MAX, userdata);
}

#else // not x86-64 with GCC or Clang: ggml's product everywhere

bool cpu_gemm_supported() { return false; }
const char * cpu_gemm_kernel(const ggml_tensor *) { return nullptr; }
bool cpu_gemm_wanted(const ggml_tensor *) { return false; }
bool cpu_gemm_takes(const ggml_tensor *) { return false; }
bool cpu_gemm_fuses(const ggml_tensor *, const ggml_tensor *) { return false; }
bool cpu_gemm_pads(const ggml_tensor *, int64_t) { return false; }
cpu_gemm_fn cpu_gemm_function(const ggml_tensor *) { return nullptr; }
void cpu_gemm_round_bf16(const float *, uint16_t *, int64_t) {}
ggml_tensor * cpu_gemm(ggml_context *, ggml_tensor *, ggml_tensor *, ggml_tensor *, bool, int64_t) { return nullptr; }

#endif

} // namespace pali
