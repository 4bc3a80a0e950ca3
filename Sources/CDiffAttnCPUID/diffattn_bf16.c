// float32 → bfloat16 with the AVX-512 BF16 conversion (vcvtneps2bf16: round to nearest even, NaN
// kept quiet). Swift has no bfloat16 type to make LLVM emit it, hence this one C function; it is
// called only when cpuid reports avx512_bf16 (the Swift side checks).
#include "diffattn_cpuid.h"
#include <immintrin.h>

__attribute__((target("avx512f,avx512bf16,avx512vl,avx512bw")))
void diffattn_narrow_bf16_avx512(const float *src, uint16_t *dst, size_t count) {
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
    }
    if (i < count) {
        __mmask16 m = (__mmask16)((1u << (count - i)) - 1);
        __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
        _mm256_mask_storeu_epi16(dst + i, m, (__m256i)h);
    }
}
