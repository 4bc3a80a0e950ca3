// The system OpenBLAS (Debian libopenblas-dev): cblas plus its thread controls.
#include <cblas.h>
