"""diffattn — diffusers' attention layer on the CPU, without torch.

    import diffattn
    attn = diffattn.Attention(query_dim=320, heads=8, dim_head=40)
    attn.load_state_dict(weights)                       # diffusers' state-dict names
    attn.set_processor(diffattn.AttnProcessor2_0())
    out = attn(hidden_states)                           # numpy float32 in and out
"""

from ._core import check as _check
from ._lib import lib as _lib, library_path
from .attention import Attention
from .processors import *  # noqa: F401,F403  (every diffusers processor class name)
from .processors import PROCESSOR_NAMES, AttentionProcessor
from .sdpa import BFloat16Array, merge_attention_partials, scaled_dot_product_attention
from .spatial_norm import SpatialNorm
from .dit import FluxAttention, MochiAttention, SanaMultiscaleLinearAttention, get_1d_rotary_pos_embed, rotary_tables
from . import models
from . import hooks
from . import parallel
from .pipeline import DiffusionPipeline
from .casting import DEFAULT_SKIP_MODULES_PATTERN, has_bf16_instructions

__version__ = _lib.da_version().decode()


def set_num_threads(n):
    """Worker threads for the kernels and BLAS (also DIFFATTN_NUM_THREADS at start-up)."""
    _check(_lib.da_set_num_threads(int(n)))


def get_num_threads():
    return _lib.da_get_num_threads()
