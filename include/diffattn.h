#ifndef DIFFATTN_H
#define DIFFATTN_H
#include <stdint.h>
#include <dlpack/dlpack.h>
const char *da_version(void);
#endif
