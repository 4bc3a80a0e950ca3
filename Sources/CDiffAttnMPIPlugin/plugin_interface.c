/* Finding and loading the optional MPI plugin (include/diffattn_mpi_plugin.h). Kept in C because
 * dladdr needs the address of code inside libdiffattn.so itself. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "diffattn_mpi_plugin.h"

static const diffattn_mpi_plugin *try_open(const char *path, char *error, size_t error_size) {
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        size_t used = strlen(error);
        if (used + 3 < error_size) snprintf(error + used, error_size - used, "%s%s", used ? "; " : "", why ? why : path);
        return NULL;
    }
    diffattn_mpi_plugin_entry entry = (diffattn_mpi_plugin_entry)dlsym(handle, DIFFATTN_MPI_PLUGIN_ENTRY);
    const diffattn_mpi_plugin *table = entry ? entry() : NULL;
    if (!table || table->abi_version != DIFFATTN_MPI_PLUGIN_ABI) {
        snprintf(error, error_size, "%s: no %s with ABI %d", path, DIFFATTN_MPI_PLUGIN_ENTRY, DIFFATTN_MPI_PLUGIN_ABI);
        dlclose(handle);
        return NULL;
    }
    return table; /* stays loaded for the life of the process */
}

const diffattn_mpi_plugin *diffattn_mpi_plugin_load(const char *override_path, char *error, size_t error_size) {
    if (error_size) error[0] = 0;
    if (override_path && override_path[0]) return try_open(override_path, error, error_size);
    /* Next to the library that holds this code (libdiffattn.so), then the loader's search path. */
    /* The directory as loaded (it may be a link farm) and the real file's directory. */
    Dl_info info;
    if (dladdr((void *)&diffattn_mpi_plugin_load, &info) && info.dli_fname) {
        char resolved[PATH_MAX];
        const char *names[2] = {info.dli_fname, realpath(info.dli_fname, resolved)};
        for (int i = 0; i < 2; i++) {
            char path[PATH_MAX + 32];
            const char *slash = names[i] ? strrchr(names[i], '/') : NULL;
            if (!slash || (i == 1 && names[0] && strcmp(names[0], names[1]) == 0)) continue;
            snprintf(path, sizeof path, "%.*s/libdiffattn-mpi.so.0", (int)(slash - names[i]), names[i]);
            const diffattn_mpi_plugin *table = try_open(path, error, error_size);
            if (table) return table;
        }
    }
    return try_open("libdiffattn-mpi.so.0", error, error_size);
}
