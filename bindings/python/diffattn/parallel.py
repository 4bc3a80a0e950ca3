"""Context parallelism: one attention call split across ranks by sequence (docs/parallel.md).

    comms = diffattn.parallel.local_communicator(4)          # in-process ranks, one thread each
    # or: comm = mpi4py.MPI.COMM_WORLD                       # under mpirun, through libdiffattn-mpi
    out = diffattn.parallel.context_parallel_attention(q, k, v, comm, ring_degree=2, ulysses_degree=2)

Rank g holds chunk g of the sequence: query/key/value are (batch, heads, seq_local, head_dim).
The library does the communication itself (through the MPI plugin for mpi4py communicators; mpi4py
is used only for MPI_Init and the communicator's handle). Calls release the GIL.
"""

import ctypes
import math
import threading

import numpy as np

from ._core import TensorArg, check, optional_arg, pointer
from ._lib import lib
from ._parallel_lib import ContextParallelCConfig

__all__ = ["ContextParallelConfig", "Communicator", "local_communicator", "mpi_communicator",
           "context_parallel_attention", "shard", "shard_range", "gather"]


class ContextParallelConfig:
    """diffusers' ContextParallelConfig degrees (models/_modeling_parallel.py), with its checks."""

    def __init__(self, ring_degree=None, ulysses_degree=None):
        self.ring_degree = 1 if ring_degree is None else int(ring_degree)
        self.ulysses_degree = 1 if ulysses_degree is None else int(ulysses_degree)
        if self.ring_degree == 1 and self.ulysses_degree == 1:
            raise ValueError("Either ring_degree or ulysses_degree must be greater than 1 in order to use "
                             "context parallel inference")
        if self.ring_degree < 1 or self.ulysses_degree < 1:
            raise ValueError("`ring_degree` and `ulysses_degree` must be greater than or equal to 1.")

    def __repr__(self):
        return f"ContextParallelConfig(ring_degree={self.ring_degree}, ulysses_degree={self.ulysses_degree})"


class Communicator:
    """A group of ranks owned by libdiffattn (in-process, or wrapping an MPI communicator)."""

    def __init__(self, handle):
        self._handle = ctypes.c_void_p(handle)
        rank, size = ctypes.c_int32(), ctypes.c_int32()
        check(lib.da_communicator_rank(self._handle, ctypes.byref(rank), ctypes.byref(size)))
        self.rank, self.size = rank.value, size.value

    def counters(self):
        """(bytes_sent, bytes_received, seconds_waiting) since creation or reset_counters()."""
        sent, received, waiting = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_double()
        check(lib.da_communicator_counters(self._handle, ctypes.byref(sent), ctypes.byref(received),
                                           ctypes.byref(waiting)))
        return sent.value, received.value, waiting.value

    def reset_counters(self):
        check(lib.da_communicator_reset_counters(self._handle))

    def set_timeout(self, seconds):
        check(lib.da_communicator_set_timeout(self._handle, float(seconds)))

    def close(self):
        if self._handle is not None:
            lib.da_communicator_destroy(self._handle)
            self._handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        return f"<diffattn Communicator rank {self.rank} of {self.size}>"


def local_communicator(n, latency=0.0, bandwidth=0.0):
    """n in-process communicators; element i is rank i, to be used from its own thread. `latency`
    (seconds) and `bandwidth` (bytes/s, 0 = infinite) inject a link delay for measurements."""
    handles = (ctypes.c_void_p * int(n))()
    if latency or bandwidth:
        check(lib.da_communicator_create_local_with_link(int(n), float(latency), float(bandwidth), handles))
    else:
        check(lib.da_communicator_create_local(int(n), handles))
    return [Communicator(h) for h in handles]


_mpi_cache = {}
_mpi_lock = threading.Lock()


def mpi_communicator(comm):
    """A Communicator over an mpi4py communicator (collective on first use; cached per communicator)."""
    fortran = int(comm.py2f())
    with _mpi_lock:
        found = _mpi_cache.get(fortran)
        if found is None:
            handle = ctypes.c_void_p()
            check(lib.da_communicator_create_mpi(fortran, ctypes.byref(handle)))
            found = _mpi_cache[fortran] = Communicator(handle.value)
        return found


def _communicator(comm):
    if isinstance(comm, Communicator):
        return comm
    if hasattr(comm, "py2f"):
        return mpi_communicator(comm)
    raise TypeError(f"comm must be a diffattn.parallel.Communicator or an mpi4py communicator, got {type(comm).__name__}")


def _to_numpy(x, name):
    """(array, torch dtype or None): torch tensors become float32 numpy arrays (torch is optional)."""
    if isinstance(x, np.ndarray) or x is None:
        return x, None
    if type(x).__module__.startswith("torch"):
        dtype = x.dtype
        t = x.detach().cpu()
        if t.dtype.is_floating_point and t.dtype != _torch().float32:
            t = t.float()
        return t.numpy(), dtype
    return np.asarray(x), None


def _torch():
    import torch
    return torch


def context_parallel_attention(query, key, value, comm, ring_degree=1, ulysses_degree=1, attn_mask=None, scale=None):
    """This rank's output shard of attention over the whole sequence.

    query/key/value: this rank's chunk, (batch, heads, seq_local, head_dim), float32 numpy of any
    strides, or torch tensors (torch in → torch out, same dtype). `comm`: an element of
    local_communicator(n) or an mpi4py communicator. `attn_mask`: this rank's key-padding mask
    (batch, 1, 1, seq_local), bool (True = attend) or additive float (-inf allowed). Collective:
    every rank calls it; bad input on any rank raises the same error on every rank.
    """
    c = _communicator(comm)
    q, torch_dtype = _to_numpy(query, "query")
    k, _ = _to_numpy(key, "key")
    v, _ = _to_numpy(value, "value")
    m, _ = _to_numpy(attn_mask, "attn_mask")
    config = ContextParallelCConfig()
    check(lib.da_context_parallel_config_init(ctypes.byref(config), ctypes.sizeof(config)))
    config.ring_degree, config.ulysses_degree = int(ring_degree), int(ulysses_degree)
    if scale is not None:
        config.has_scale, config.scale = 1, float(scale)
        if not math.isfinite(config.scale):
            raise ValueError(f"scale must be finite, got {scale}")
    try:
        qa, ka, va = (TensorArg(x, n) for x, n in ((q, "query"), (k, "key"), (v, "value")))
        mask = optional_arg(m, "attn_mask", allow_bool=True)
        shape = qa.array.shape[:-1] + va.array.shape[-1:] if qa.array.ndim == va.array.ndim else qa.array.shape
        out = np.empty(shape, dtype=np.float32)
    except Exception:
        # Still take part in the call (with no query) so that the other ranks fail now, naming this
        # rank, instead of waiting for it until their timeout; then raise the local error.
        lib.da_context_parallel_attention(c._handle, ctypes.byref(config), None, None, None, None, None)
        raise
    check(lib.da_context_parallel_attention(c._handle, ctypes.byref(config), qa.ref, ka.ref, va.ref, pointer(mask),
                                            TensorArg(out, "out").ref))
    if torch_dtype is not None:
        return _torch().from_numpy(out).to(torch_dtype)
    return out


def shard_range(length, ranks, rank):
    """(begin, end) of chunk `rank` of `length` tokens split equally over `ranks`."""
    begin, count = ctypes.c_int64(), ctypes.c_int64()
    check(lib.da_context_parallel_shard_range(int(length), int(ranks), int(rank), ctypes.byref(begin),
                                              ctypes.byref(count)))
    return begin.value, begin.value + count.value


def shard(x, comm, dim):
    """This rank's chunk of `x` along `dim` (a view for numpy, a slice for torch)."""
    c = _communicator(comm)
    begin, end = shard_range(x.shape[dim], c.size, c.rank)
    index = [slice(None)] * x.ndim
    index[dim] = slice(begin, end)
    return x[tuple(index)]


def gather(local, comm, dim):
    """Every rank's chunk of a float32 tensor concatenated along `dim` in rank order (collective)."""
    c = _communicator(comm)
    a, torch_dtype = _to_numpy(local, "local")
    arg = TensorArg(a, "local")
    shape = list(arg.array.shape)
    if not 0 <= dim < len(shape):
        dim = dim + len(shape) if -len(shape) <= dim < 0 else dim
    full_shape = list(shape)
    if 0 <= dim < len(shape):
        full_shape[dim] *= c.size
    full = np.empty(full_shape, dtype=np.float32)
    check(lib.da_context_parallel_gather(c._handle, arg.ref, int(dim), TensorArg(full, "full").ref))
    if torch_dtype is not None:
        return _torch().from_numpy(full).to(torch_dtype)
    return full
