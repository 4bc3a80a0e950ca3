/* Context-parallel cases shared by the in-process C test (Tests/capi/test_parallel.c, one thread per
 * rank) and the MPI program (Tests/mpi/cp_mpi.c, one process per rank). Needs only diffattn.h. */
#ifndef CP_CASES_H
#define CP_CASES_H
#include "diffattn.h"

/* Runs every case valid for `size` ranks on `comm` (this rank's handle). Each case compares this
 * rank's output with single-process SDPA of the full inputs (max abs ≤ 1e-5), or checks that a bad
 * input fails on this rank with the expected status. Returns the number of failures; *passed gets
 * the number of passed checks; failure lines go to stdout prefixed with the rank. */
int cp_run_cases(da_communicator comm, int *passed);

#endif
