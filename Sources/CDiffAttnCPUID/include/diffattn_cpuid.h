// cpuid / xgetbv for the kernel dispatcher: Swift has no inline assembly, so these two
// instructions live here; so do the AVX-512 BF16 conversion and the prefetch Swift cannot emit.
#ifndef DIFFATTN_CPUID_H
#define DIFFATTN_CPUID_H
#include <stdint.h>
#include <stddef.h>

/// Executes cpuid(leaf, subleaf); returns 0 when the leaf is above the CPU's maximum.
int diffattn_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
/// XCR0 (which register states the OS saves); 0 when the CPU lacks OSXSAVE.
uint64_t diffattn_xcr0(void);


/// float32 → bfloat16 bit patterns (round to nearest even) with AVX-512 BF16 instructions.
/// Call only when the CPU reports avx512_bf16.
void diffattn_narrow_bf16_avx512(const float *src, uint16_t *dst, size_t count);
/// Prefetches `floats` floats of each of `rows` rows, `row_stride` floats apart, into cache.
void diffattn_prefetch_rows(const float *base, size_t row_stride, size_t rows, size_t floats);

/// The int8 attention path's integer kernels (diffattn_int8.c; layouts there). Call only with AVX2.
void diffattn_int8_scores_avx2(const int32_t *qp, int64_t pairs, const int16_t *k, int64_t kstride,
                               int64_t count, float factor, float *st);
void diffattn_int8_pack_probabilities_avx2(const float *st, int64_t count, int32_t *pp);
void diffattn_int8_values_avx2(const int32_t *pp, int64_t pairs, const int32_t *v, int64_t vstride,
                               int64_t channels, const float *scale, const float *alpha, float *ot);
/// vpmaddwd throughput probe: `iterations` · 8 · 16 · 2 integer operations.
int32_t diffattn_int8_throughput_avx2(int64_t iterations, int32_t seed);
#endif
