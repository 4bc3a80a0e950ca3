/* The interface between libdiffattn and its optional MPI plugin, libdiffattn-mpi.so.0.
 *
 * The base library has no MPI symbol: it dlopen()s the plugin on the first
 * da_communicator_create_mpi call and calls the one exported function
 * `diffattn_mpi_plugin_v1`, which returns this table. Every entry takes plain C types (the
 * caller's communicator travels as its Fortran handle, MPI_Comm_c2f / mpi4py's comm.py2f()), so
 * neither side needs the other's headers beyond this file. Errors: a non-zero return and a
 * NUL-terminated message written into `error` (at most `error_size` bytes). */
#ifndef DIFFATTN_MPI_PLUGIN_H
#define DIFFATTN_MPI_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DIFFATTN_MPI_PLUGIN_ABI 1

/* One point-to-point transfer of a batch: `bytes` from/to `buffer` with rank `peer`. */
typedef struct diffattn_mpi_transfer {
    int32_t peer;
    int64_t bytes;
    void *buffer;
} diffattn_mpi_transfer;

typedef struct diffattn_mpi_plugin {
    uint32_t abi_version; /* DIFFATTN_MPI_PLUGIN_ABI */
    /* A private duplicate (MPI_Comm_dup, collective over `fortran_comm`) so that the library's
     * messages never match the host's. Fails when MPI is not initialised (the plugin never
     * initialises MPI: the host does, from C or through mpi4py). */
    int32_t (*open)(int64_t fortran_comm, void **context, int32_t *rank, int32_t *size, char *error,
                    size_t error_size);
    /* Posts every send and receive of one exchange (MPI_Isend / MPI_Irecv, messages split into
     * pieces below 1 GiB) with `tag`, and returns at once; `*request` completes with wait. */
    int32_t (*post)(void *context, const diffattn_mpi_transfer *sends, int32_t send_count,
                    const diffattn_mpi_transfer *receives, int32_t receive_count, int32_t tag,
                    void **request, char *error, size_t error_size);
    /* Waits for every transfer of `request` and frees it. After `timeout_seconds` (> 0) the
     * pending receives are cancelled and it fails naming the peers that never answered. */
    int32_t (*wait)(void *context, void *request, double timeout_seconds, char *error, size_t error_size);
    /* Frees the duplicate communicator (MPI_Comm_free; a no-op once MPI is finalised). */
    void (*close)(void *context);
} diffattn_mpi_plugin;

/* The plugin's one export. */
typedef const diffattn_mpi_plugin *(*diffattn_mpi_plugin_entry)(void);
#define DIFFATTN_MPI_PLUGIN_ENTRY "diffattn_mpi_plugin_v1"

/* In the base library only: loads the plugin from `override_path` when non-empty, else from the
 * directory of libdiffattn.so, else through the loader's path. NULL with a message on failure. */
const diffattn_mpi_plugin *diffattn_mpi_plugin_load(const char *override_path, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
