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
#endif
