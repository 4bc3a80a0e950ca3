// cpuid / xgetbv for the kernel dispatcher: Swift has no inline assembly, so these two
// instructions live here; and the one AVX-512 BF16 conversion Swift cannot emit (diffattn_bf16.c).
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
#endif
