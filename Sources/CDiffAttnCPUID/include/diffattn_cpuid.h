// cpuid / xgetbv for the kernel dispatcher: Swift has no inline assembly, so these two
// instructions live here. Nothing else belongs in this target.
#ifndef DIFFATTN_CPUID_H
#define DIFFATTN_CPUID_H
#include <stdint.h>

/// Executes cpuid(leaf, subleaf); returns 0 when the leaf is above the CPU's maximum.
int diffattn_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
/// XCR0 (which register states the OS saves); 0 when the CPU lacks OSXSAVE.
uint64_t diffattn_xcr0(void);

#endif
