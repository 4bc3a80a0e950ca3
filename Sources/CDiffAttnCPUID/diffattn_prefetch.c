// Software prefetch for the attention tiles' full masks: a 64-row mask tile is 64 streams, more
// than the hardware prefetcher follows. Swift has no prefetch instruction, hence this function.
#include "diffattn_cpuid.h"

void diffattn_prefetch_rows(const float *base, size_t row_stride, size_t rows, size_t floats) {
    for (size_t r = 0; r < rows; r++) {
        const char *p = (const char *)(base + r * row_stride);
        for (size_t b = 0; b < floats * sizeof(float); b += 64) __builtin_prefetch(p + b, 0, 3);
    }
}
