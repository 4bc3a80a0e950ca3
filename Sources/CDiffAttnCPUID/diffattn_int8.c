// Integer kernels of the int8 attention path (SageAttention's recipe on AVX2). Swift has no way to
// ask for vpmaddwd, the instruction they are built on, hence C. vpmaddwd multiplies 16-bit pairs
// and adds each pair into a 32-bit lane: with int8 values held in int16 there is no saturation
// (vpmaddubsw's int16 result would overflow at 255·127·2), and a 15-bit P fits as well. Per 256-bit
// instruction that is 16 multiply-adds against 8 for an fp32 FMA. Callers check AVX2 first.
// Layouts (the attention tile's, AttentionTile.swift): query rows in lanes, 64 per tile; a "pair
// word" is two int16 values in one 32-bit word, the lower one first (little-endian).
#include "diffattn_cpuid.h"
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))

// st[j][lane] = factor · Σ_p qp[p][lane] ⊙ k_j[p] for j < count rounded up to 6 (extra rows repeat
// the last key and are never read). qp: [pairs][64] pair words; key j's pairs at k + j·kstride.
TARGET void diffattn_int8_scores_avx2(const int32_t *qp, int64_t pairs, const int16_t *k, int64_t kstride,
                                      int64_t count, float factor, float *st) {
    const __m256 f = _mm256_set1_ps(factor);
    for (int64_t m = 0; m < 4; m++) {
        for (int64_t j = 0; j < count; j += 6) {
            const int32_t *k0 = (const int32_t *)(k + (j < count ? j : count - 1) * kstride);
            const int32_t *k1 = (const int32_t *)(k + (j + 1 < count ? j + 1 : count - 1) * kstride);
            const int32_t *k2 = (const int32_t *)(k + (j + 2 < count ? j + 2 : count - 1) * kstride);
            const int32_t *k3 = (const int32_t *)(k + (j + 3 < count ? j + 3 : count - 1) * kstride);
            const int32_t *k4 = (const int32_t *)(k + (j + 4 < count ? j + 4 : count - 1) * kstride);
            const int32_t *k5 = (const int32_t *)(k + (j + 5 < count ? j + 5 : count - 1) * kstride);
            __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
            __m256i a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
            const int32_t *q = qp + 16 * m;
            for (int64_t p = 0; p < pairs; p++, q += 64) {
                __m256i q0 = _mm256_loadu_si256((const __m256i *)q), q1 = _mm256_loadu_si256((const __m256i *)(q + 8));
                __m256i b;
                b = _mm256_set1_epi32(k0[p]);
                a00 = _mm256_add_epi32(a00, _mm256_madd_epi16(q0, b)); a01 = _mm256_add_epi32(a01, _mm256_madd_epi16(q1, b));
                b = _mm256_set1_epi32(k1[p]);
                a10 = _mm256_add_epi32(a10, _mm256_madd_epi16(q0, b)); a11 = _mm256_add_epi32(a11, _mm256_madd_epi16(q1, b));
                b = _mm256_set1_epi32(k2[p]);
                a20 = _mm256_add_epi32(a20, _mm256_madd_epi16(q0, b)); a21 = _mm256_add_epi32(a21, _mm256_madd_epi16(q1, b));
                b = _mm256_set1_epi32(k3[p]);
                a30 = _mm256_add_epi32(a30, _mm256_madd_epi16(q0, b)); a31 = _mm256_add_epi32(a31, _mm256_madd_epi16(q1, b));
                b = _mm256_set1_epi32(k4[p]);
                a40 = _mm256_add_epi32(a40, _mm256_madd_epi16(q0, b)); a41 = _mm256_add_epi32(a41, _mm256_madd_epi16(q1, b));
                b = _mm256_set1_epi32(k5[p]);
                a50 = _mm256_add_epi32(a50, _mm256_madd_epi16(q0, b)); a51 = _mm256_add_epi32(a51, _mm256_madd_epi16(q1, b));
            }
            float *s = st + j * 64 + 16 * m;
#define STORE(r, lo, hi) \
            _mm256_storeu_ps(s + (r) * 64, _mm256_mul_ps(_mm256_cvtepi32_ps(lo), f)); \
            _mm256_storeu_ps(s + (r) * 64 + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(hi), f));
            STORE(0, a00, a01) STORE(1, a10, a11) STORE(2, a20, a21)
            STORE(3, a30, a31) STORE(4, a40, a41) STORE(5, a50, a51)
#undef STORE
        }
    }
}

// pp[p][lane] = pair word of round(32767·st[2p][lane]), round(32767·st[2p+1][lane]); probabilities are
// in [0, 1] (the online softmax's exp2(s − running max)); a row at or past `count` counts as 0.
TARGET void diffattn_int8_pack_probabilities_avx2(const float *st, int64_t count, int32_t *pp) {
    const __m256 s = _mm256_set1_ps(32767.0f);
    for (int64_t p = 0; 2 * p < count; p++) {
        const float *lo = st + 2 * p * 64, *hi = lo + 64;
        int odd = 2 * p + 1 >= count;
        for (int64_t l = 0; l < 64; l += 8) {
            __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(lo + l), s));
            __m256i b = odd ? _mm256_setzero_si256() : _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(hi + l), s));
            _mm256_storeu_si256((__m256i *)(pp + p * 64 + l), _mm256_or_si256(a, _mm256_slli_epi32(b, 16)));
        }
    }
}

// ot[c][lane] = ot[c][lane]·alpha[lane] + scale[c] · Σ_p pp[p][lane] ⊙ v[p][c] for c < channels, where
// v[p][c] is the pair word (v[2p][c], v[2p+1][c]) at v + p·vstride + c.
TARGET void diffattn_int8_values_avx2(const int32_t *pp, int64_t pairs, const int32_t *v, int64_t vstride,
                                      int64_t channels, const float *scale, const float *alpha, float *ot) {
    for (int64_t m = 0; m < 4; m++) {
        const __m256 al0 = _mm256_loadu_ps(alpha + 16 * m), al1 = _mm256_loadu_ps(alpha + 16 * m + 8);
        for (int64_t c = 0; c < channels; c += 6) {
            int64_t c0 = c, c1 = c + 1 < channels ? c + 1 : channels - 1, c2 = c + 2 < channels ? c + 2 : channels - 1;
            int64_t c3 = c + 3 < channels ? c + 3 : channels - 1, c4 = c + 4 < channels ? c + 4 : channels - 1;
            int64_t c5 = c + 5 < channels ? c + 5 : channels - 1;
            __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
            __m256i a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
            const int32_t *pr = pp + 16 * m, *vr = v;
            for (int64_t p = 0; p < pairs; p++, pr += 64, vr += vstride) {
                __m256i p0 = _mm256_loadu_si256((const __m256i *)pr), p1 = _mm256_loadu_si256((const __m256i *)(pr + 8));
                __m256i b;
                b = _mm256_set1_epi32(vr[c0]);
                a00 = _mm256_add_epi32(a00, _mm256_madd_epi16(p0, b)); a01 = _mm256_add_epi32(a01, _mm256_madd_epi16(p1, b));
                b = _mm256_set1_epi32(vr[c1]);
                a10 = _mm256_add_epi32(a10, _mm256_madd_epi16(p0, b)); a11 = _mm256_add_epi32(a11, _mm256_madd_epi16(p1, b));
                b = _mm256_set1_epi32(vr[c2]);
                a20 = _mm256_add_epi32(a20, _mm256_madd_epi16(p0, b)); a21 = _mm256_add_epi32(a21, _mm256_madd_epi16(p1, b));
                b = _mm256_set1_epi32(vr[c3]);
                a30 = _mm256_add_epi32(a30, _mm256_madd_epi16(p0, b)); a31 = _mm256_add_epi32(a31, _mm256_madd_epi16(p1, b));
                b = _mm256_set1_epi32(vr[c4]);
                a40 = _mm256_add_epi32(a40, _mm256_madd_epi16(p0, b)); a41 = _mm256_add_epi32(a41, _mm256_madd_epi16(p1, b));
                b = _mm256_set1_epi32(vr[c5]);
                a50 = _mm256_add_epi32(a50, _mm256_madd_epi16(p0, b)); a51 = _mm256_add_epi32(a51, _mm256_madd_epi16(p1, b));
            }
            // Only real channels are written: a repeated one would rescale its row twice.
#define UPDATE(r, cr, lo, hi) \
            if (c + (r) < channels) { \
                float *o = ot + (cr) * 64 + 16 * m; \
                __m256 sc = _mm256_set1_ps(scale[cr]); \
                _mm256_storeu_ps(o, _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), sc, _mm256_mul_ps(_mm256_loadu_ps(o), al0))); \
                _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), sc, _mm256_mul_ps(_mm256_loadu_ps(o + 8), al1))); \
            }
            UPDATE(0, c0, a00, a01) UPDATE(1, c1, a10, a11) UPDATE(2, c2, a20, a21)
            UPDATE(3, c3, a30, a31) UPDATE(4, c4, a40, a41) UPDATE(5, c5, a50, a51)
#undef UPDATE
        }
    }
}

// Peak probe: `iterations` rounds of 8 vpmaddwd + vpaddd on distinct operands (16 multiply-adds per
// 256-bit instruction) — the int8 path's inner loop without its loads. The empty asm statements make
// the operands opaque each round, so the compiler can neither hoist nor merge the multiplies.
TARGET int32_t diffattn_int8_throughput_avx2(int64_t iterations, int32_t seed) {
    __m256i a0 = _mm256_set1_epi32(seed), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m256i x0 = _mm256_set1_epi32(seed | 0x10001), x1 = _mm256_set1_epi32(0x20003), x2 = _mm256_set1_epi32(0x40005);
    __m256i x3 = _mm256_set1_epi32(0x60007), y0 = _mm256_set1_epi32(0x00030002), y1 = _mm256_set1_epi32(0x00050001);
    for (int64_t i = 0; i < iterations; i++) {
        __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3), "+x"(y0), "+x"(y1));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x0, y0)); a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x1, y0));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(x2, y0)); a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(x3, y0));
        a4 = _mm256_add_epi32(a4, _mm256_madd_epi16(x0, y1)); a5 = _mm256_add_epi32(a5, _mm256_madd_epi16(x1, y1));
        a6 = _mm256_add_epi32(a6, _mm256_madd_epi16(x2, y1)); a7 = _mm256_add_epi32(a7, _mm256_madd_epi16(x3, y1));
    }
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                                 _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
    return _mm256_extract_epi32(s, 0);
}
