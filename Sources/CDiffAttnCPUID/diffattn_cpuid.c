#include "diffattn_cpuid.h"
#include <cpuid.h>

int diffattn_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(leaf, subleaf, &a, &b, &c, &d)) { out[0] = out[1] = out[2] = out[3] = 0; return 0; }
    out[0] = a; out[1] = b; out[2] = c; out[3] = d;
    return 1;
}

uint64_t diffattn_xcr0(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  // OSXSAVE
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
