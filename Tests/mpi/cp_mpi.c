/* The context-parallel cases of cp_cases.c across MPI processes, through libdiffattn's MPI plugin.
 * Run: mpirun -np 2|4 ./cp_mpi. Rank 0 prints "mpi-c np=P: N passed, N failed" (totals over ranks). */
#include <mpi.h>
#include <stdio.h>

#include "cp_cases.h"

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int counts[2] = {0, 0}; /* passed, failed */
    da_communicator comm = NULL;
    if (da_communicator_create_mpi((int64_t)MPI_Comm_c2f(MPI_COMM_WORLD), &comm) != DA_OK) {
        printf("rank %d FAIL da_communicator_create_mpi: %s\n", rank, da_last_error());
        counts[1] = 1;
    } else {
        da_communicator_set_timeout(comm, 60);
        counts[1] = cp_run_cases(comm, &counts[0]);
        /* gather: each rank's (2, 3) block along axis 1 -> (2, 3·P), in rank order */
        float local[6], full[6 * 16];
        for (int i = 0; i < 6; i++) local[i] = (float)(rank * 100 + i);
        int64_t ls[2] = {2, 3}, fs[2] = {2, 3 * size};
        DLTensor l = {local, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, ls, NULL, 0};
        DLTensor f = {full, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, fs, NULL, 0};
        int ok = size <= 16 && da_context_parallel_gather(comm, &l, 1, &f) == DA_OK;
        for (int g = 0; ok && g < size; g++)
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 3; c++) ok &= full[r * 3 * size + g * 3 + c] == (float)(g * 100 + r * 3 + c);
        if (ok) counts[0]++;
        else { counts[1]++; printf("rank %d FAIL gather: %s\n", rank, da_last_error()); }
        da_communicator_destroy(comm);
    }
    int totals[2];
    MPI_Reduce(counts, totals, 2, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) printf("mpi-c np=%d: %d passed, %d failed\n", size, totals[0], totals[1]);
    MPI_Finalize();
    return counts[1] == 0 ? 0 : 1;
}
