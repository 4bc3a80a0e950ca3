/* libdiffattn-mpi.so.0: the MPI transport of libdiffattn's context parallelism, loaded by the base
 * library with dlopen so that libdiffattn itself never links MPI. It implements the table of
 * Sources/CDiffAttnMPIPlugin/include/diffattn_mpi_plugin.h with nonblocking point-to-point MPI. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diffattn_mpi_plugin.h"

#define PIECE_BYTES (1 << 30) /* MPI counts are int: larger messages go in pieces */

typedef struct {
    MPI_Comm comm;
    int rank;
} context_t;

typedef struct {
    int count;
    MPI_Request *requests;
    int *peers;    /* per request; -1 for sends */
} request_t;

static void say(char *error, size_t size, const char *what, int code) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int length = 0;
    if (code != MPI_SUCCESS) MPI_Error_string(code, text, &length);
    snprintf(error, size, "%s%s%s", what, length ? ": " : "", text);
}

static int32_t plugin_open(int64_t fortran_comm, void **context, int32_t *rank, int32_t *size, char *error,
                           size_t error_size) {
    int initialised = 0, finalised = 0;
    MPI_Initialized(&initialised);
    MPI_Finalized(&finalised);
    if (!initialised || finalised) {
        say(error, error_size, "MPI is not initialised (call MPI_Init, or import mpi4py's MPI, before creating a communicator)", MPI_SUCCESS);
        return 1;
    }
    MPI_Comm comm = MPI_Comm_f2c((MPI_Fint)fortran_comm);
    if (comm == MPI_COMM_NULL) {
        say(error, error_size, "the Fortran handle names no communicator", MPI_SUCCESS);
        return 1;
    }
    context_t *c = calloc(1, sizeof *c);
    if (!c) { say(error, error_size, "out of memory", MPI_SUCCESS); return 1; }
    /* The caller's error handler is left alone; only the duplicate returns errors instead of aborting. */
    int rc = MPI_Comm_dup(comm, &c->comm);
    if (rc != MPI_SUCCESS) { free(c); say(error, error_size, "MPI_Comm_dup", rc); return 1; }
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    int r = 0, s = 0;
    MPI_Comm_rank(c->comm, &r);
    MPI_Comm_size(c->comm, &s);
    c->rank = r;
    *rank = r;
    *size = s;
    *context = c;
    return 0;
}

static int pieces(int64_t bytes) { return bytes == 0 ? 1 : (int)((bytes + PIECE_BYTES - 1) / PIECE_BYTES); }

static int32_t plugin_post(void *context, const diffattn_mpi_transfer *sends, int32_t send_count,
                           const diffattn_mpi_transfer *receives, int32_t receive_count, int32_t tag, void **request,
                           char *error, size_t error_size) {
    context_t *c = context;
    int total = 0;
    for (int i = 0; i < send_count; i++) total += pieces(sends[i].bytes);
    for (int i = 0; i < receive_count; i++) total += pieces(receives[i].bytes);
    request_t *r = calloc(1, sizeof *r);
    if (r) r->requests = calloc((size_t)total + 1, sizeof(MPI_Request));
    if (r) r->peers = calloc((size_t)total + 1, sizeof(int));
    if (!r || !r->requests || !r->peers) {
        if (r) { free(r->requests); free(r->peers); free(r); }
        say(error, error_size, "out of memory", MPI_SUCCESS);
        return 1;
    }
    /* Receives first, so that matching sends find them posted. */
    for (int pass = 0; pass < 2; pass++) {
        const diffattn_mpi_transfer *list = pass == 0 ? receives : sends;
        int n = pass == 0 ? receive_count : send_count;
        for (int i = 0; i < n; i++) {
            int64_t done = 0;
            do {
                int64_t chunk = list[i].bytes - done < PIECE_BYTES ? list[i].bytes - done : PIECE_BYTES;
                char *p = (char *)list[i].buffer + done;
                int rc = pass == 0 ? MPI_Irecv(p, (int)chunk, MPI_BYTE, list[i].peer, tag, c->comm, &r->requests[r->count])
                                   : MPI_Isend(p, (int)chunk, MPI_BYTE, list[i].peer, tag, c->comm, &r->requests[r->count]);
                if (rc != MPI_SUCCESS) {
                    say(error, error_size, pass == 0 ? "MPI_Irecv" : "MPI_Isend", rc);
                    for (int k = 0; k < r->count; k++) { MPI_Cancel(&r->requests[k]); MPI_Request_free(&r->requests[k]); }
                    free(r->requests); free(r->peers); free(r);
                    return 1;
                }
                r->peers[r->count++] = pass == 0 ? list[i].peer : -1;
                done += chunk;
            } while (done < list[i].bytes);
        }
    }
    *request = r;
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int32_t plugin_wait(void *context, void *request, double timeout_seconds, char *error, size_t error_size) {
    (void)context;
    request_t *r = request;
    double deadline = now() + (timeout_seconds > 0 ? timeout_seconds : 1e9);
    int done = 0, rc = MPI_SUCCESS;
    long spins = 0;
    /* Poll rather than MPI_Waitall so that a peer that never calls becomes an error, not a hang. */
    while (!done) {
        rc = MPI_Testall(r->count, r->requests, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) break;
        if (done) break;
        if (++spins > 1000) {
            struct timespec pause = {0, 20000};
            nanosleep(&pause, NULL);
            if (now() > deadline) break;
        }
    }
    int32_t status = 0;
    if (rc != MPI_SUCCESS) {
        say(error, error_size, "MPI_Testall", rc);
        status = 1;
    } else if (!done) {
        char peers[256] = "";
        size_t used = 0;
        for (int k = 0; k < r->count; k++) {
            if (r->requests[k] == MPI_REQUEST_NULL) continue;
            if (r->peers[k] >= 0 && used + 16 < sizeof peers)
                used += (size_t)snprintf(peers + used, sizeof peers - used, " %d", r->peers[k]);
            MPI_Cancel(&r->requests[k]);
            MPI_Request_free(&r->requests[k]);
        }
        snprintf(error, error_size, "no message within %g s from rank(s)%s (has every rank made the same call?)",
                 timeout_seconds, used ? peers : " (sends pending)");
        status = 1;
    }
    free(r->requests);
    free(r->peers);
    free(r);
    return status;
}

static void plugin_close(void *context) {
    context_t *c = context;
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Comm_free(&c->comm);
    free(c);
}

static const diffattn_mpi_plugin table = {DIFFATTN_MPI_PLUGIN_ABI, plugin_open, plugin_post, plugin_wait, plugin_close};

__attribute__((visibility("default"))) const diffattn_mpi_plugin *diffattn_mpi_plugin_v1(void) { return &table; }
