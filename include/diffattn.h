/*
 * diffattn.h — the C API of libdiffattn: Hugging Face diffusers' attention layer (0.42.1
 * semantics) on the CPU.
 *
 * Conventions (every declaration below follows them):
 *  - Every fallible call returns a da_status: DA_OK (0) or one of the DA_ERR_* codes. On failure
 *    da_last_error() returns a message naming the argument and what was expected; the message is
 *    thread-local and valid until the next libdiffattn call on the same thread. No call aborts
 *    the process on bad input: handles, pointers, dtypes, ranks, shapes and sizes are validated
 *    before any arithmetic.
 *  - Handles are opaque. A destroyed handle, a handle of another kind or a made-up value is
 *    answered with DA_ERR_INVALID_HANDLE. Destroy functions accept NULL.
 *  - Config structs start with `uint32_t struct_size`; fill them with the matching *_init
 *    function (which writes diffusers' defaults) before changing fields. Structs only grow at the
 *    end; fields are fixed-width integers or doubles, never C enums. Enum values are explicit and
 *    never renumbered.
 *  - Tensors are DLPack DLTensor (dlpack/dlpack.h), CPU only. The caller owns tensor memory; the
 *    library never frees or keeps a pointer to it after the call returns. Strides (in elements)
 *    are honoured; NULL strides mean compact row-major. Data tensors are float32; masks are
 *    float32 (additive) or boolean (8-bit: kDLUInt/8 or DLPack's bool code 6; non-zero = attend).
 *  - Thread safety, one rule for every handle type (da_attention, da_model and the attention
 *    modules and hook registries it lends out, da_pipeline, da_hook): distinct handles may be used
 *    from distinct threads at once. On one handle, READ calls — forwards (da_attention_forward,
 *    da_scaled_dot_product_attention), output shapes, weight reads, queries, stats — may run
 *    concurrently from any number of threads, also on a model with group offloading: a weight
 *    group in use stays resident until every call using it has ended, so concurrent forwards of
 *    different modules of one offloaded model return what serial calls return. CHANGING calls —
 *    set_weight, load, fuse, set_processor, slicing, layerwise casting, enable/disable group
 *    offloading, enable/disable caches, hook (un)registration, set_cache_context,
 *    begin_step/end_step, destroy — must not overlap any other call on that handle (for a model:
 *    on it or on anything it lent out); the caller serialises them, e.g. with a read-write lock.
 *    Stateful hooks (caches, pyramid attention broadcast) keep state across the calls of a step:
 *    the calls they wrap count as changing calls. A call that deviates from this rule says so.
 *  - fork(): a child process may go on using the library, and the handles it inherited, when no
 *    libdiffattn call was running in any thread of the parent at the fork (the kernels' worker
 *    threads are started again in the child). Exception: a model with group offloading's
 *    use_stream set — its prefetch thread exists only in the parent; create it in the child.
 */
#ifndef DIFFATTN_H
#define DIFFATTN_H

#include <stddef.h>
#include <stdint.h>
#include <dlpack/dlpack.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Versions                                                                                    */
/* ------------------------------------------------------------------------------------------ */

#define DA_VERSION_MAJOR 0
#define DA_VERSION_MINOR 1
#define DA_VERSION_PATCH 0
#define DA_VERSION_NUMBER (DA_VERSION_MAJOR * 10000 + DA_VERSION_MINOR * 100 + DA_VERSION_PATCH)
/* Bumped only when a struct's existing layout or a function's meaning changes incompatibly. */
#define DA_ABI_VERSION 0

/* The library's version as "MAJOR.MINOR.PATCH". Static string; never NULL; thread-safe. */
const char *da_version(void);

/* The library's DA_VERSION_NUMBER. Thread-safe. */
uint32_t da_version_number(void);

/* The library's DA_ABI_VERSION. Thread-safe. */
uint32_t da_abi_version(void);

/* Runtime ABI check: call as da_check_abi(DA_ABI_VERSION). DA_OK when the loaded library serves
 * callers compiled against that ABI, else DA_ERR_UNSUPPORTED with a message. Thread-safe. */
int32_t da_check_abi(uint32_t header_abi_version);

/* ------------------------------------------------------------------------------------------ */
/* Status and errors                                                                           */
/* ------------------------------------------------------------------------------------------ */

typedef int32_t da_status;

#define DA_OK 0
#define DA_ERR_INVALID_ARGUMENT 1 /* a NULL pointer, a value out of range (Python: ValueError) */
#define DA_ERR_INVALID_HANDLE 2   /* destroyed, wrong-kind or unknown handle (ValueError) */
#define DA_ERR_SHAPE 3            /* tensor rank/shape/stride mismatch (ValueError) */
#define DA_ERR_DTYPE 4            /* tensor dtype or device not accepted (TypeError) */
#define DA_ERR_VALUE 5            /* where diffusers raises ValueError (ValueError) */
#define DA_ERR_TYPE 6             /* where diffusers raises TypeError (TypeError) */
#define DA_ERR_UNSUPPORTED 7      /* not implemented in this build or on this machine (NotImplementedError) */
#define DA_ERR_NOT_FOUND 8        /* unknown name, e.g. a weight (KeyError) */
#define DA_ERR_STATE 9            /* the module lacks what the call needs, e.g. fused layers (AttributeError) */
#define DA_ERR_OUT_OF_MEMORY 10   /* allocation failed or size overflows (MemoryError) */
#define DA_ERR_IO 11              /* file system error (OSError) */
#define DA_ERR_INTERNAL 12        /* a bug in libdiffattn; please report it */

/* The message of the last failed call on this thread ("" if none). Valid until the next
 * libdiffattn call on this thread. Never NULL. */
const char *da_last_error(void);

/* A static name for a status code ("DA_ERR_SHAPE"), or "DA_ERR_UNKNOWN". Thread-safe. */
const char *da_status_name(da_status status);

/* ------------------------------------------------------------------------------------------ */
/* Threads                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Sets the number of worker threads used by the attention kernels and the projections (1..1024;
 * OpenBLAS itself runs single-threaded inside them).
 * The initial value is the environment variable DIFFATTN_NUM_THREADS if set, else the number of
 * online CPUs. Results are bitwise identical for any thread count. Must not overlap a running
 * forward. Errors: DA_ERR_INVALID_ARGUMENT for a value out of range. */
da_status da_set_num_threads(int32_t num_threads);

/* The current number of worker threads. Thread-safe. */
int32_t da_get_num_threads(void);

/* ------------------------------------------------------------------------------------------ */
/* Capabilities                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* The CPU features the kernels can use that this CPU has, comma-separated (e.g.
 * "avx2,fma,avx512f,avx512bf16"), or "baseline x86-64". Static string; thread-safe. */
const char *da_cpu_features(void);

/* The kernel paths compiled into this build that this CPU can run, comma-separated (e.g.
 * "portable,avx2+fma,avx512"). Static string; thread-safe. */
const char *da_kernel_paths(void);

/* 1 when this CPU has the AVX-512 BF16 instructions, which layerwise casting then uses to narrow
 * weights to bfloat16 (vcvtneps2bf16); 0 when a portable path giving the same bits is used.
 * Thread-safe. */
int32_t da_cpu_has_bf16_instructions(void);

/* ------------------------------------------------------------------------------------------ */
/* Layerwise casting                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Storage formats for da_*_enable_layerwise_casting (computation is always float32). */
#define DA_STORAGE_FLOAT32 0   /* undo the casting: weights back to float32 */
#define DA_STORAGE_BFLOAT16 1
#define DA_STORAGE_FLOAT16 2

/* (da_attention_enable_layerwise_casting and da_model_enable_layerwise_casting: see the model section.) */

/* The kernel path in use (starts as the best one the CPU supports). Static string; thread-safe. */
const char *da_kernel_path(void);

/* Selects a kernel path by name, one of da_kernel_paths() (for testing and benchmarking; results
 * agree to float32 rounding across paths). Must not overlap a running forward. Errors:
 * DA_ERR_INVALID_ARGUMENT (NULL), DA_ERR_UNSUPPORTED (unknown, or not runnable on this CPU). */
da_status da_set_kernel_path(const char *name);

/* ------------------------------------------------------------------------------------------ */
/* Tensors allocated by the library                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Releases a tensor returned by a *_alloc or helper call (calls its deleter). NULL is accepted.
 * Calling the tensor's own `deleter` is equivalent. */
void da_tensor_free(DLManagedTensor *tensor);

/* ------------------------------------------------------------------------------------------ */
/* Processors: one value per diffusers class name, never renumbered                            */
/* ------------------------------------------------------------------------------------------ */

#define DA_PROCESSOR_DEFAULT 0 /* diffusers' choice: AttnProcessor2_0, or AttnProcessor if !scale_qk */
/* Classic family (attention_processor.py:AttnProcessor.__call__ … LoRAAttnProcessor) */
#define DA_PROCESSOR_ATTN_PROCESSOR 1
#define DA_PROCESSOR_ATTN_PROCESSOR_2_0 2
#define DA_PROCESSOR_FUSED_ATTN_PROCESSOR_2_0 3
#define DA_PROCESSOR_SLICED_ATTN_PROCESSOR 4
#define DA_PROCESSOR_XFORMERS_ATTN_PROCESSOR 5
#define DA_PROCESSOR_ATTN_PROCESSOR_NPU 6
#define DA_PROCESSOR_XLA_FLASH_ATTN_PROCESSOR_2_0 7
#define DA_PROCESSOR_ATTN_ADDED_KV_PROCESSOR 10
#define DA_PROCESSOR_ATTN_ADDED_KV_PROCESSOR_2_0 11
#define DA_PROCESSOR_SLICED_ATTN_ADDED_KV_PROCESSOR 12
#define DA_PROCESSOR_XFORMERS_ATTN_ADDED_KV_PROCESSOR 13
#define DA_PROCESSOR_CUSTOM_DIFFUSION_ATTN_PROCESSOR 20
#define DA_PROCESSOR_CUSTOM_DIFFUSION_ATTN_PROCESSOR_2_0 21
#define DA_PROCESSOR_CUSTOM_DIFFUSION_XFORMERS_ATTN_PROCESSOR 22
#define DA_PROCESSOR_IP_ADAPTER_ATTN_PROCESSOR 30
#define DA_PROCESSOR_IP_ADAPTER_ATTN_PROCESSOR_2_0 31
#define DA_PROCESSOR_IP_ADAPTER_XFORMERS_ATTN_PROCESSOR 32
#define DA_PROCESSOR_LORA_ATTN_PROCESSOR 40
#define DA_PROCESSOR_LORA_ATTN_PROCESSOR_2_0 41
#define DA_PROCESSOR_LORA_XFORMERS_ATTN_PROCESSOR 42
#define DA_PROCESSOR_LORA_ATTN_ADDED_KV_PROCESSOR 43
/* DiT / joint family (docs/design.md; DiT/ in the sources) */
#define DA_PROCESSOR_JOINT_ATTN_PROCESSOR_2_0 100
#define DA_PROCESSOR_FUSED_JOINT_ATTN_PROCESSOR_2_0 101
#define DA_PROCESSOR_XFORMERS_JOINT_ATTN_PROCESSOR 102
#define DA_PROCESSOR_PAG_JOINT_ATTN_PROCESSOR_2_0 103
#define DA_PROCESSOR_PAG_CFG_JOINT_ATTN_PROCESSOR_2_0 104
#define DA_PROCESSOR_SD3_IP_ADAPTER_JOINT_ATTN_PROCESSOR_2_0 105
#define DA_PROCESSOR_FLUX_ATTN_PROCESSOR_2_0 110
#define DA_PROCESSOR_FUSED_FLUX_ATTN_PROCESSOR_2_0 111
#define DA_PROCESSOR_FLUX_ATTN_PROCESSOR_2_0_NPU 112
#define DA_PROCESSOR_FUSED_FLUX_ATTN_PROCESSOR_2_0_NPU 113
#define DA_PROCESSOR_FLUX_SINGLE_ATTN_PROCESSOR_2_0 114
#define DA_PROCESSOR_XLA_FLUX_FLASH_ATTN_PROCESSOR_2_0 115
#define DA_PROCESSOR_FLUX_IP_ADAPTER_JOINT_ATTN_PROCESSOR_2_0 116
#define DA_PROCESSOR_FLUX_ATTN_PROCESSOR 117
#define DA_PROCESSOR_FLUX_IP_ADAPTER_ATTN_PROCESSOR 118
#define DA_PROCESSOR_AURA_FLOW_ATTN_PROCESSOR_2_0 120
#define DA_PROCESSOR_FUSED_AURA_FLOW_ATTN_PROCESSOR_2_0 121
#define DA_PROCESSOR_COG_VIDEO_X_ATTN_PROCESSOR_2_0 130
#define DA_PROCESSOR_FUSED_COG_VIDEO_X_ATTN_PROCESSOR_2_0 131
#define DA_PROCESSOR_HUNYUAN_ATTN_PROCESSOR_2_0 140
#define DA_PROCESSOR_FUSED_HUNYUAN_ATTN_PROCESSOR_2_0 141
#define DA_PROCESSOR_PAG_HUNYUAN_ATTN_PROCESSOR_2_0 142
#define DA_PROCESSOR_PAG_CFG_HUNYUAN_ATTN_PROCESSOR_2_0 143
#define DA_PROCESSOR_LUMINA_ATTN_PROCESSOR_2_0 150
#define DA_PROCESSOR_ALLEGRO_ATTN_PROCESSOR_2_0 151
#define DA_PROCESSOR_STABLE_AUDIO_ATTN_PROCESSOR_2_0 152
#define DA_PROCESSOR_MOCHI_ATTN_PROCESSOR_2_0 160
#define DA_PROCESSOR_MOCHI_VAE_ATTN_PROCESSOR_2_0 161
#define DA_PROCESSOR_SANA_LINEAR_ATTN_PROCESSOR_2_0 170
#define DA_PROCESSOR_PAG_CFG_SANA_LINEAR_ATTN_PROCESSOR_2_0 171
#define DA_PROCESSOR_PAG_IDENTITY_SANA_LINEAR_ATTN_PROCESSOR_2_0 172
#define DA_PROCESSOR_SANA_MULTISCALE_ATTN_PROCESSOR_2_0 173
#define DA_PROCESSOR_PAG_IDENTITY_SELF_ATTN_PROCESSOR_2_0 180
#define DA_PROCESSOR_PAG_CFG_IDENTITY_SELF_ATTN_PROCESSOR_2_0 181
/* libdiffattn's own, not a diffusers class: AttnProcessor2_0 with SDPA at DA_PRECISION_INT8 (lossy,
 * opt-in; see da_sdpa_options.precision). Setting it on a CPU without AVX2: DA_ERR_UNSUPPORTED. */
#define DA_PROCESSOR_ATTN_PROCESSOR_INT8 190

/* diffusers' class name of a processor kind ("AttnProcessor2_0"), or NULL for an unknown value.
 * Static string; thread-safe. */
const char *da_processor_name(int32_t kind);

/* The kind whose diffusers class name is `name` (exact spelling). Errors: DA_ERR_INVALID_ARGUMENT
 * (NULL), DA_ERR_NOT_FOUND (no such class). Thread-safe. */
da_status da_processor_kind_from_name(const char *name, int32_t *kind);

/* 1 if this build can run processors of `kind`, else 0 (reserved values not yet implemented,
 * unknown values). Thread-safe. */
int32_t da_processor_is_implemented(int32_t kind);

/* The number of processor kinds (every DA_PROCESSOR_* value but DA_PROCESSOR_DEFAULT). Thread-safe. */
int64_t da_processor_kind_count(void);

/* The processor kind at `index`, 0 <= index < da_processor_kind_count(), in the order of the values
 * above (so bindings list the classes without a copy of their names). Errors: DA_ERR_INVALID_ARGUMENT
 * (NULL `kind`, index out of range). Thread-safe. */
da_status da_processor_kind_at(int64_t index, int32_t *kind);

/* Processor families: which constructor arguments a class takes and which pipeline runs it. */
#define DA_PROCESSOR_FAMILY_STANDARD 1            /* Q/K/V projections of the module (AttnProcessor, ...) */
#define DA_PROCESSOR_FAMILY_ADDED_KV 2            /* K/V include the added-context projections */
#define DA_PROCESSOR_FAMILY_CUSTOM_DIFFUSION 3    /* hidden_size, train_kv, train_q_out, ... */
#define DA_PROCESSOR_FAMILY_IP_ADAPTER 4          /* hidden_size, cross_attention_dim, num_tokens, scale */
#define DA_PROCESSOR_FAMILY_DEPRECATED_LORA 5     /* constructible, never callable */
#define DA_PROCESSOR_FAMILY_DIT 10                /* joint / DiT processors */
#define DA_PROCESSOR_FAMILY_DIT_SD3_IP_ADAPTER 11 /* SD3IPAdapterJointAttnProcessor2_0's arguments */
#define DA_PROCESSOR_FAMILY_DIT_FLUX_IP_ADAPTER 12 /* Flux IP-Adapter: the IP-Adapter arguments */

/* The family (DA_PROCESSOR_FAMILY_*) of processor `kind`. Errors: DA_ERR_INVALID_ARGUMENT (NULL
 * `family`), DA_ERR_NOT_FOUND (unknown kind). Thread-safe. */
da_status da_processor_family(int32_t kind, int32_t *family);

/* sizeof the struct this header declares under `name` ("da_attention_info", "DLTensor", ...) as the
 * library was compiled, or 0 for NULL or an unknown name. Bindings that mirror the structs compare
 * their sizes with it when they load. Thread-safe. */
size_t da_struct_size(const char *name);

/* A processor's constructor arguments (diffusers' names). Fields a kind does not take are
 * ignored. The library copies what the pointers refer to; they need only live for the call. */
typedef struct da_processor_config {
    uint32_t struct_size;
    int32_t kind;                /* DA_PROCESSOR_* */
    int64_t slice_size;          /* Sliced*: rows of the batch×heads axis per slice (>= 1) */
    /* Custom Diffusion (CustomDiffusion*) and IP-Adapter (IPAdapter*) */
    int64_t hidden_size;         /* DA_NONE; required by IP-Adapter, and by Custom Diffusion
                                    when train_kv or train_q_out */
    int64_t cross_attention_dim; /* DA_NONE */
    int32_t train_kv;            /* 1 */
    int32_t train_q_out;         /* 1; 0 for CustomDiffusionXFormersAttnProcessor */
    int32_t out_bias;            /* 1 */
    int32_t num_ip_adapters;     /* IP-Adapter: len(num_tokens) = len(scale); 1 */
    double dropout;              /* 0.0 */
    const int64_t *num_tokens;   /* num_ip_adapters token counts; NULL = all 4 */
    const int32_t *scale_counts; /* per adapter: 0 = one scale value, n > 0 = a per-image list of
                                    n values (valid with region masks only); NULL = all 0 */
    const double *scales;        /* the scale values, adapter by adapter; NULL = the kind's
                                    default (1.0; 0.5 for SD3IPAdapterJointAttnProcessor2_0) */
    /* Appended in 0.1: SD3IPAdapterJointAttnProcessor2_0(hidden_size, ip_hidden_states_dim, head_dim,
     * timesteps_emb_dim, scale) — its scale is scales[0] with num_ip_adapters = 1.
     * FluxIPAdapterAttnProcessor / FluxIPAdapterJointAttnProcessor2_0 take hidden_size,
     * cross_attention_dim, num_tokens and scales (one value per adapter) above. */
    int64_t ip_hidden_states_dim; /* DA_NONE; required by SD3IPAdapterJointAttnProcessor2_0 */
    int64_t head_dim;             /* DA_NONE; required by SD3IPAdapterJointAttnProcessor2_0 */
    int64_t timesteps_emb_dim;    /* 1280 */
} da_processor_config;

/* Fills `config` (whose size the caller passes as `struct_size`, i.e. sizeof *config) with the
 * defaults of processor `kind`. With DA_PROCESSOR_DEFAULT the fields every kind shares are filled
 * and kind stays DA_PROCESSOR_DEFAULT: da_attention_set_processor and da_model_set_attn_processor(s)
 * then install the default of each module's class (AttnProcessor2_0, or AttnProcessor without
 * scale_qk; FluxAttnProcessor for FluxAttention, ...). Errors: DA_ERR_INVALID_ARGUMENT (NULL, size
 * too small), DA_ERR_NOT_FOUND (unknown kind). Thread-safe. */
da_status da_processor_config_init(da_processor_config *config, size_t struct_size, int32_t kind);

/* ------------------------------------------------------------------------------------------ */
/* Attention (diffusers.models.attention_processor.Attention)                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct da_attention_s *da_attention;

/* "None" for the optional size fields of da_attention_config. */
#define DA_NONE 0

#define DA_CROSS_ATTENTION_NORM_NONE 0
#define DA_CROSS_ATTENTION_NORM_LAYER_NORM 1
#define DA_CROSS_ATTENTION_NORM_GROUP_NORM 2

#define DA_QK_NORM_NONE 0
#define DA_QK_NORM_LAYER_NORM 1
#define DA_QK_NORM_FP32_LAYER_NORM 2
#define DA_QK_NORM_LAYER_NORM_ACROSS_HEADS 3
#define DA_QK_NORM_RMS_NORM 4
#define DA_QK_NORM_RMS_NORM_ACROSS_HEADS 5
#define DA_QK_NORM_L2 6

/* Tri-state for diffusers arguments that may be None, False or True. */
#define DA_TRISTATE_NONE (-1)
#define DA_TRISTATE_FALSE 0
#define DA_TRISTATE_TRUE 1

/* Every constructor argument of diffusers' Attention, with its default after
 * da_attention_config_init. Size fields use DA_NONE (0) for None. */
typedef struct da_attention_config {
    uint32_t struct_size;
    int32_t processor;                       /* DA_PROCESSOR_DEFAULT */
    int64_t query_dim;                       /* required, > 0 */
    int64_t cross_attention_dim;             /* DA_NONE → query_dim, not cross-attention */
    int64_t heads;                           /* 8 */
    int64_t kv_heads;                        /* DA_NONE */
    int64_t dim_head;                        /* 64 */
    int64_t cross_attention_norm_num_groups; /* 32 */
    int64_t added_kv_proj_dim;               /* DA_NONE */
    int64_t norm_num_groups;                 /* DA_NONE */
    int64_t spatial_norm_dim;                /* DA_NONE */
    int64_t out_dim;                         /* DA_NONE */
    int64_t out_context_dim;                 /* DA_NONE */
    double dropout;                          /* 0.0 (inference: identity; stored) */
    double eps;                              /* 1e-5 */
    double rescale_output_factor;            /* 1.0 */
    int32_t bias;                            /* 0 */
    int32_t upcast_attention;                /* 0 */
    int32_t upcast_softmax;                  /* 0 */
    int32_t cross_attention_norm;            /* DA_CROSS_ATTENTION_NORM_NONE */
    int32_t qk_norm;                         /* DA_QK_NORM_NONE */
    int32_t added_proj_bias;                 /* DA_TRISTATE_TRUE (None behaves like False) */
    int32_t out_bias;                        /* 1 */
    int32_t scale_qk;                        /* 1 */
    int32_t only_cross_attention;            /* 0 */
    int32_t residual_connection;             /* 0 */
    int32_t from_deprecated_attn_block;      /* 0 (_from_deprecated_attn_block) */
    int32_t context_pre_only;                /* DA_TRISTATE_NONE */
    int32_t pre_only;                        /* 0 */
    int32_t elementwise_affine;              /* 1 */
    int32_t is_causal;                       /* 0 */
    /* ---- appended in 0.1 (DiT): which diffusers module class the handle stands for ---- */
    int32_t module_class;                    /* DA_MODULE_CLASS_ATTENTION */
    /* SanaMultiscaleLinearAttention only (in_channels = query_dim, attention_head_dim = dim_head,
     * num_attention_heads = heads, where heads = DA_NONE computes int((query_dim // dim_head) * mult);
     * eps defaults to 1e-15 there only if the caller sets it) */
    int64_t out_channels;                    /* required for Sana multiscale */
    double mult;                             /* 1.0 */
    int32_t norm_type;                       /* DA_MULTISCALE_NORM_BATCH_NORM */
    int32_t num_kernel_sizes;                /* 1 (1..16) */
    int64_t kernel_sizes[16];                /* {5} */
} da_attention_config;

/* da_attention_config.module_class: the diffusers class whose constructor arguments, state dict
 * and default processor the module follows (transformer_flux.py:FluxAttention, transformer_mochi.py:MochiAttention, attention_processor.py:SanaMultiscaleLinearAttention).
 * FluxAttention reads query_dim, heads, dim_head, dropout, bias, added_kv_proj_dim,
 * added_proj_bias, out_bias, eps, out_dim, context_pre_only, pre_only, elementwise_affine;
 * MochiAttention also out_context_dim (its processor is MochiAttnProcessor2_0). */
#define DA_MODULE_CLASS_ATTENTION 0
#define DA_MODULE_CLASS_FLUX_ATTENTION 1
#define DA_MODULE_CLASS_MOCHI_ATTENTION 2
#define DA_MODULE_CLASS_SANA_MULTISCALE_LINEAR_ATTENTION 3

#define DA_MULTISCALE_NORM_BATCH_NORM 0
#define DA_MULTISCALE_NORM_RMS_NORM 1
#define DA_MULTISCALE_NORM_LAYER_NORM 2

/* Writes diffusers' defaults into `config` (query_dim is set to 0 and must be given).
 * Pass sizeof *config as struct_size. Errors: DA_ERR_INVALID_ARGUMENT (NULL or size smaller than
 * the first release's struct). Thread-safe. */
da_status da_attention_config_init(da_attention_config *config, size_t struct_size);

/* Creates an Attention module. Weights start as torch would initialise them (deterministic
 * pseudo-random Linear weights and biases in torch's ranges, unit norm weights, zero norm biases);
 * load real ones with
 * da_attention_set_weight. `*out` is set to NULL on failure.
 * Errors (diffusers' construction errors, in diffusers' order): DA_ERR_VALUE (only_cross_attention
 * without added_kv_proj_dim, groups not dividing channels, unknown qk_norm / cross_attention_norm,
 * qk_norm not valid for added projections), DA_ERR_TYPE (across-heads qk_norm without kv_heads),
 * DA_ERR_INVALID_ARGUMENT (NULL, non-positive or absurd sizes), DA_ERR_OUT_OF_MEMORY (more than
 * 2^30 weights). Thread-safe. The handle is released with da_attention_destroy. */
da_status da_attention_create(const da_attention_config *config, da_attention *out);

/* Destroys the module; NULL and already destroyed handles are ignored. Must not overlap other
 * calls on the same handle. */
void da_attention_destroy(da_attention attention);

/* Copies the stored constructor arguments into `config` (struct_size must be set by the caller,
 * e.g. with da_attention_config_init). Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT. */
da_status da_attention_get_config(da_attention attention, da_attention_config *config);

/* The attributes diffusers derives from the constructor arguments (attention_processor.py:Attention.__init__). */
typedef struct da_attention_info {
    uint32_t struct_size;
    int32_t is_cross_attention;
    int64_t heads;               /* out_dim // dim_head when out_dim is given */
    int64_t inner_dim;
    int64_t inner_kv_dim;
    int64_t sliceable_head_dim;  /* the constructor's heads */
    int64_t cross_attention_dim; /* argument, or query_dim */
    int64_t out_dim;             /* argument, or query_dim */
    int64_t out_context_dim;     /* argument, or query_dim */
    double scale;                /* dim_head^-0.5 if scale_qk else 1 */
    int32_t fused_projections;
    int32_t processor;           /* the current processor kind */
} da_attention_info;

/* Fills `info` (set info->struct_size = sizeof *info first). Errors: DA_ERR_INVALID_HANDLE,
 * DA_ERR_INVALID_ARGUMENT. Read-only: may run concurrently with forwards. */
da_status da_attention_get_info(da_attention attention, da_attention_info *info);

/* ---- Processor ---------------------------------------------------------------------------- */

/* Installs a processor (diffusers' set_processor). Weight-holding processors register their
 * weights under the "processor." prefix of the state dict; replacing one drops them.
 * Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT (NULL, bad field), DA_ERR_NOT_FOUND
 * (unknown kind), DA_ERR_UNSUPPORTED (a constructor that fails on a CPU, as in diffusers).
 * Must not overlap other calls on the handle. */
da_status da_attention_set_processor(da_attention attention, const da_processor_config *processor);

/* Copies the current processor's arguments into `processor` (struct_size set by the caller).
 * Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT. */
da_status da_attention_get_processor(da_attention attention, da_processor_config *processor);

/* Changes the current processor's arguments that shape no weights — an IP-Adapter's scale,
 * which pipelines set before each call — keeping its weights. `processor` must equal the current
 * processor in everything else. Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT,
 * DA_ERR_VALUE (anything else differs; the scale list is malformed). Must not overlap other calls. */
da_status da_attention_update_processor(da_attention attention, const da_processor_config *processor);

/* Copies the current IP-Adapter processor's scale values into `scales` (capacity entries) and its
 * per-adapter counts into `scale_counts` (num_adapters entries, 0 = one value) as
 * da_processor_config describes them; `*num_values` receives the number of values. Either array may
 * be NULL to query sizes. Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT (capacity too
 * small), DA_ERR_STATE (not an IP-Adapter processor). */
da_status da_attention_get_ip_adapter_scale(da_attention attention, double *scales, int64_t capacity,
                                            int32_t *scale_counts, int32_t num_adapters, int64_t *num_values);

/* ---- Switches (diffusers' Attention methods; each installs the processor diffusers would) --- */

/* set_attention_slice(slice_size): slice_size DA_NONE (0) is None. Installs SlicedAttnProcessor,
 * SlicedAttnAddedKVProcessor, AttnAddedKVProcessor or the default. Errors: DA_ERR_VALUE
 * (slice_size > sliceable_head_dim, or negative), DA_ERR_INVALID_HANDLE. */
da_status da_attention_set_attention_slice(da_attention attention, int64_t slice_size);

/* set_use_memory_efficient_attention_xformers(use). libdiffattn's xFormers kinds run its own
 * memory-efficient kernel, so enabling works on any CPU; Custom Diffusion and IP-Adapter weights are
 * carried over. Errors: DA_ERR_INVALID_HANDLE, DA_ERR_VALUE (weights that do not carry over). */
da_status da_attention_set_use_memory_efficient_attention_xformers(da_attention attention, int32_t use);

/* set_use_npu_flash_attention(use): AttnProcessorNPU, or the default. */
da_status da_attention_set_use_npu_flash_attention(da_attention attention, int32_t use);

/* set_use_xla_flash_attention(use, partition_spec, is_flux): XLAFlashAttnProcessor2_0 (or the Flux
 * XLA processor when is_flux), or the default. The partition spec has no meaning on a CPU. */
da_status da_attention_set_use_xla_flash_attention(da_attention attention, int32_t use, int32_t is_flux);

/* fuse_projections(fuse): builds to_qkv (self-attention modules) or to_kv (cross-attention), and
 * to_added_qkv when the module has add_q/k/v_proj, as copies of the current weights; sets
 * fused_projections to `fuse` (diffusers builds the layers even when fuse is 0). The new entries
 * appear in the state dict. Errors: DA_ERR_INVALID_HANDLE, DA_ERR_STATE (no to_k/to_v). */
da_status da_attention_fuse_projections(da_attention attention, int32_t fuse);

/* Removes the fused layers and clears fused_projections. Errors: DA_ERR_INVALID_HANDLE. */
da_status da_attention_unfuse_projections(da_attention attention);

/* ---- Weights (diffusers state-dict names) ------------------------------------------------ */

#define DA_MAX_NDIM 8

typedef struct da_weight_info {
    uint32_t struct_size;
    int32_t ndim;
    const char *name;           /* e.g. "to_out.0.weight"; valid until the module's set of
                                   weights changes (set_processor, fuse) or it is destroyed */
    int64_t shape[DA_MAX_NDIM]; /* first ndim entries are meaningful */
} da_weight_info;

/* The number of entries of the state dict. Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT. */
da_status da_attention_weight_count(da_attention attention, int64_t *count);

/* Name and shape of state-dict entry `index` (0 ≤ index < count), in diffusers' order.
 * Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT (NULL, index out of range). */
da_status da_attention_weight_info(da_attention attention, int64_t index, da_weight_info *info);

/* Copies `value` (float32, exactly the entry's shape, any strides) into weight `name`.
 * Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT, DA_ERR_NOT_FOUND (unknown name; the
 * message lists the expected names), DA_ERR_SHAPE, DA_ERR_DTYPE. Must not overlap other calls on
 * the handle. */
da_status da_attention_set_weight(da_attention attention, const char *name, const DLTensor *value);

/* Borrows weight `name`: from now on the library reads it from `value->data` in place — no copy
 * (e.g. a torch parameter's memory). `value`: float32 or bfloat16 (DLPack kDLBfloat, 16 bits),
 * on the CPU, exactly the entry's shape, contiguous, aligned to its element size.
 * Lifetime: the caller keeps that memory alive and unchanged while forwards run, until the entry is
 * replaced (da_attention_set_weight, another borrow, fuse/unfuse, a processor change that drops
 * it) or the handle is destroyed. Writes between forwards are seen by the next forward.
 * Projection weights are read in place by the GEMM (bfloat16 widened chunk by chunk); other
 * entries (biases, norms) are read per call; da_attention_get_weight copies out of it.
 * Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT (NULL, misaligned), DA_ERR_NOT_FOUND,
 * DA_ERR_SHAPE (shape, not contiguous), DA_ERR_DTYPE. Must not overlap other calls on the handle. */
da_status da_attention_borrow_weight(da_attention attention, const char *name, const DLTensor *value);

/* Copies weight `name` into `out` (float32, exactly the entry's shape, any strides).
 * Errors as da_attention_set_weight. Read-only on the module. */
da_status da_attention_get_weight(da_attention attention, const char *name, DLTensor *out);

/* ---- Forward ------------------------------------------------------------------------------ */

/* The arguments of Attention.forward. NULL tensors mean None. */
typedef struct da_forward_args {
    uint32_t struct_size;
    const DLTensor *hidden_states;         /* required: (B, L, C) or (B, C, H, W) */
    const DLTensor *encoder_hidden_states; /* (B, S, Ce) */
    const DLTensor *attention_mask;        /* float32 additive or boolean, diffusers' layouts */
    const DLTensor *temb;                  /* (B, Cz, h, w) for spatial_norm; (B, timesteps_emb_dim)
                                              for SD3IPAdapterJointAttnProcessor2_0 */
    /* IP-Adapter processors. With ip_hidden_states_given = 0 an IP-Adapter processor reads the
     * deprecated concatenated form (image tokens appended to encoder_hidden_states); with 1,
     * encoder_hidden_states is the text part of diffusers' tuple (text, [ip_0, …]). */
    int32_t ip_hidden_states_given;
    int32_t num_ip_hidden_states;
    const DLTensor *ip_hidden_states;      /* array of num_ip_hidden_states tensors, each
                                              (B, T, Cip) or (B, N, T, Cip). The DiT IP-Adapter
                                              processors take their ip_hidden_states keyword here
                                              (given = 1): SD3 one (B, T, ip_hidden_states_dim)
                                              tensor, Flux one per adapter */
    int32_t num_ip_adapter_masks;          /* ignored when ip_adapter_masks is NULL (None) */
    const DLTensor *const *ip_adapter_masks; /* array of pointers, one (1, N, h, w) region mask per
                                                adapter; a NULL entry is None */
    const struct da_dit_args *dit;         /* appended in 0.1: DiT keywords; NULL = none given */
} da_forward_args;

/* Zeroes `args` and sets struct_size. Errors: DA_ERR_INVALID_ARGUMENT. Thread-safe. */
da_status da_forward_args_init(da_forward_args *args, size_t struct_size);

/* The keyword arguments of the DiT processors, as their callers pass them.
 * NULL tensors mean None; tables are float32 and must have exactly the shapes below. */
typedef struct da_dit_args {
    uint32_t struct_size;
    /* image_rotary_emb = (cos, sin): Flux (T+S, D) over the joint sequence, CogVideoX and Hunyuan
     * (S, D) interleaved tables, Mochi (S, H, D/2) per-head angles; also Stable Audio's
     * rotary_emb (S, R), R <= D even (rotate-half of the first R lanes). */
    const DLTensor *rotary_cos;
    const DLTensor *rotary_sin;
    /* Allegro's image_rotary_emb = (((cos_t, sin_t), (cos_h, sin_h), (cos_w, sin_w)), (p_t, p_h, p_w)):
     * tables (N_axis, d_axis) with d_axis the chunks of D (size ceil(D/3), last smaller), positions
     * int64 (1 or B, S) in range. */
    const DLTensor *allegro_cos[3];
    const DLTensor *allegro_sin[3];
    const DLTensor *allegro_positions[3];
    /* Lumina's query_rotary_emb / key_rotary_emb: complex tables (1 or B, L, D/2) passed as float32
     * (1 or B, L, D/2, 2) holding (real, imaginary). */
    const DLTensor *query_rotary_emb;
    const DLTensor *key_rotary_emb;
    int64_t base_sequence_length; /* Lumina; DA_NONE = None */
} da_dit_args;

/* Zeroes `args` and sets struct_size. Errors: DA_ERR_INVALID_ARGUMENT. Thread-safe. */
da_status da_dit_args_init(da_dit_args *args, size_t struct_size);

/* Table layouts of da_rotary_tables (diffusers' get_1d_rotary_pos_embed). */
#define DA_ROTARY_REPEAT_INTERLEAVED 0 /* use_real, repeat_interleave_real: width dim, each value twice */
#define DA_ROTARY_CONCATENATED 1       /* use_real, not repeat_interleave_real: [cos, cos] */
#define DA_ROTARY_HALF_WIDTH 2         /* use_real=False: cos and sin of the angles, width dim/2
                                          (Lumina's complex table is cos + i·sin) */

/* cos and sin tables for `num_positions` rows of `num_axes` positions each (`positions` is
 * row-major (num_positions, num_axes)): axis a gets get_1d_rotary_pos_embed(axes_dim[a],
 * positions[:, a], theta, ...) and the axes are concatenated along the last axis, as Flux's
 * FluxPosEmbed does (num_axes = 1 is get_1d_rotary_pos_embed itself). `float64` computes the
 * angles in double precision (Flux) instead of float32 (the default of diffusers). Results are
 * (num_positions, Σ width) float32 tensors released with da_tensor_free.
 * Errors: DA_ERR_INVALID_ARGUMENT (NULL, odd or non-positive dims, bad layout, non-finite values).
 * Thread-safe. */
da_status da_rotary_tables(const double *positions, int64_t num_positions, int32_t num_axes,
                           const int64_t *axes_dim, double theta, double linear_factor, double ntk_factor,
                           int32_t layout, int32_t float64, DLManagedTensor **cos_out,
                           DLManagedTensor **sin_out);

#define DA_MAX_OUTPUTS 4

/* Shapes of what a forward with `args` returns (1 tensor for classic processors; joint
 * processors return 2). */
typedef struct da_output_shapes {
    uint32_t struct_size;
    int32_t count;
    int32_t ndim[DA_MAX_OUTPUTS];
    int64_t shape[DA_MAX_OUTPUTS][DA_MAX_NDIM];
} da_output_shapes;

/* Validates `args` against the module and its processor and reports the output shapes without
 * computing anything. Errors: as da_attention_forward. Read-only on the module. */
da_status da_attention_output_shapes(da_attention attention, const da_forward_args *args,
                                     da_output_shapes *shapes);

/* Runs the processor (Attention.forward) and writes its outputs into the caller's tensors
 * `outputs[0 .. num_outputs-1]` (float32, shapes as da_attention_output_shapes reports, any
 * strides). Nothing is written on failure.
 * hidden_states and encoder_hidden_states that are contiguous float32 (row-major; size-1 axes may
 * have any stride) are read in place, never written, and not retained past the call (a hook that
 * keeps one gets a copy); other layouts are copied once. An output may be the memory of an input
 * (an in-place call): every input is read before any output is written.
 * Errors: DA_ERR_INVALID_HANDLE; DA_ERR_INVALID_ARGUMENT (NULL args/hidden_states/outputs, wrong
 * num_outputs); DA_ERR_DTYPE (not float32 / not CPU; boolean mask where the processor's kernel
 * takes additive masks only); DA_ERR_SHAPE (every shape diffusers would reject, with the sizes);
 * DA_ERR_STATE (module lacks a layer the processor needs, deprecated LoRA processors);
 * DA_ERR_OUT_OF_MEMORY. Empty inputs (batch, query or key length 0) are DA_ERR_SHAPE, where diffusers
 * returns empty or NaN results (docs/deviations.md).
 * Read-only on the module: concurrent forwards on one handle are allowed. */
da_status da_attention_forward(da_attention attention, const da_forward_args *args,
                               DLTensor *outputs, int32_t num_outputs);

/* As da_attention_forward, but the library allocates the outputs: on success `outputs[0 ..
 * *num_outputs-1]` receive tensors to be released with da_tensor_free. `capacity` is the length
 * of the caller's `outputs` array (DA_MAX_OUTPUTS is always enough). */
da_status da_attention_forward_alloc(da_attention attention, const da_forward_args *args,
                                     DLManagedTensor **outputs, int32_t capacity,
                                     int32_t *num_outputs);

/* ---- The module's helper methods (each returns a new tensor; release with da_tensor_free) -- */

/* prepare_attention_mask(mask, target_length, batch_size, out_dim) — attention_processor.py:Attention.prepare_attention_mask, including the
 * padding by target_length quirk. `mask` float32 or boolean; the result has the mask's dtype.
 * Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT, DA_ERR_DTYPE, DA_ERR_SHAPE. */
da_status da_attention_prepare_attention_mask(da_attention attention, const DLTensor *mask,
                                              int64_t target_length, int64_t batch_size,
                                              int32_t out_dim, DLManagedTensor **out);

/* head_to_batch_dim(tensor, out_dim): (B, N, W) or (B, E, N, W) → (B·H, N', W/H) when out_dim
 * is 3, else (B, H, N', W/H). Errors: as above (DA_ERR_SHAPE when W is not divisible by heads). */
da_status da_attention_head_to_batch_dim(da_attention attention, const DLTensor *tensor,
                                         int32_t out_dim, DLManagedTensor **out);

/* batch_to_head_dim(tensor): (B·H, N, d) → (B, N, H·d). */
da_status da_attention_batch_to_head_dim(da_attention attention, const DLTensor *tensor,
                                         DLManagedTensor **out);

/* get_attention_scores(query (N, Lq, d), key (N, Lk, d), mask broadcastable to (N, Lq, Lk) or
 * NULL): softmax(mask + scale·Q·Kᵀ) with the module's scale. A boolean mask is a DA_ERR_DTYPE
 * as in diffusers. */
da_status da_attention_get_attention_scores(da_attention attention, const DLTensor *query,
                                            const DLTensor *key, const DLTensor *attention_mask,
                                            DLManagedTensor **out);

/* norm_encoder_hidden_states(e) with the module's norm_cross (layer or group norm).
 * Errors: DA_ERR_STATE when the module has no norm_cross. */
da_status da_attention_norm_encoder_hidden_states(da_attention attention, const DLTensor *encoder_hidden_states,
                                                  DLManagedTensor **out);

/* ------------------------------------------------------------------------------------------ */
/* SpatialNorm (diffusers.models.attention_processor.SpatialNorm) on its own                   */
/* ------------------------------------------------------------------------------------------ */

/* The weights of SpatialNorm(f_channels, zq_channels), by diffusers' names. */
typedef struct da_spatial_norm_weights {
    uint32_t struct_size;
    const DLTensor *norm_layer_weight; /* (f_channels) */
    const DLTensor *norm_layer_bias;   /* (f_channels) */
    const DLTensor *conv_y_weight;     /* (f_channels, zq_channels, 1, 1) */
    const DLTensor *conv_y_bias;       /* (f_channels) */
    const DLTensor *conv_b_weight;     /* (f_channels, zq_channels, 1, 1) */
    const DLTensor *conv_b_bias;       /* (f_channels) */
} da_spatial_norm_weights;

/* SpatialNorm.forward(f, zq): GroupNorm(32 groups, eps 1e-6) of f (B, C, H, W), times
 * conv_y(zq') plus conv_b(zq'), zq' = zq (B or 1, Cz, h, w) nearest-resized to (H, W). Returns a new
 * tensor (release with da_tensor_free). Errors: DA_ERR_INVALID_ARGUMENT, DA_ERR_DTYPE, DA_ERR_SHAPE
 * (C not divisible by 32, mismatched weights). Thread-safe. */
da_status da_spatial_norm(const DLTensor *f, const DLTensor *zq, const da_spatial_norm_weights *weights,
                          DLManagedTensor **out);

/* ------------------------------------------------------------------------------------------ */
/* Scaled dot-product attention on its own (torch.nn.functional.scaled_dot_product_attention)  */
/* ------------------------------------------------------------------------------------------ */

#define DA_SDPA_AUTO 0  /* the tiled memory-efficient kernel */
#define DA_SDPA_MATH 1  /* scores materialised (O(Nq·Nk) scratch per worker) */
#define DA_SDPA_FLASH 2 /* tiled online softmax, O(N) extra memory */

typedef struct da_sdpa_options {
    uint32_t struct_size;
    int32_t is_causal;  /* 0; query i attends keys j <= i (top-left aligned, as torch) */
    double dropout_p;   /* must be 0 (inference library) */
    int32_t has_scale;  /* 0: scale = 1/sqrt(D) */
    int32_t enable_gqa; /* 0; 1 lets query heads be a multiple of key/value heads */
    double scale;       /* used when has_scale */
    int32_t algorithm;  /* DA_SDPA_AUTO */
    /* Added after the first fields: a caller whose struct_size ends at `algorithm` gets the default. */
    int32_t precision;  /* DA_PRECISION_DEFAULT */
} da_sdpa_options;

#define DA_PRECISION_DEFAULT 0 /* arithmetic in float32 (bfloat16 operands are widened in the tile) */
#define DA_PRECISION_INT8 1    /* opt-in, lossy: SageAttention's recipe (docs/performance.md): Q per
                                * 64-row tile and K per 96-key block (smoothed by its mean over
                                * tokens) quantised to int8, Q·Kᵀ in integers, softmax in float32,
                                * P in 15-bit fixed point against V int8 per channel. Always the
                                * flash order. Needs AVX2 (DA_ERR_UNSUPPORTED otherwise); inputs
                                * must be finite (non-finite values give unspecified outputs). */

/* Defaults into `options`. Errors: DA_ERR_INVALID_ARGUMENT. Thread-safe. */
da_status da_sdpa_options_init(da_sdpa_options *options, size_t struct_size);

/* out = softmax(scale·Q·Kᵀ + mask)·V with torch's semantics, on strided float32 tensors:
 * query (B, H, Nq, D), key (B, Hkv, Nk, D), value (B, Hkv, Nk, Dv), out (B, H, Nq, Dv). Query, key
 * and value may instead all be bfloat16 (kDLBfloat, 16 bits): products and sums then run in
 * float32 (each bf16 widens exactly), softmax in float32; `out` may be float32 or bfloat16 (its
 * dtype chooses; bf16 rounds to nearest even). Rank 3
 * tensors are taken as B = 1. `attn_mask` (NULL for none) is float32 additive or boolean and
 * broadcasts to (B, H, Nq, Nk) by trailing-axis rules. A query row with every key removed gives
 * zeros. `options` NULL means defaults. The inputs are read in place (no copies).
 * Errors: DA_ERR_INVALID_ARGUMENT (NULL, dropout_p ≠ 0, bad algorithm, a mask together with
 * is_causal — torch's rule), DA_ERR_DTYPE,
 * DA_ERR_SHAPE (mismatched sizes, H not a multiple of Hkv, Hkv ≠ H without enable_gqa, mask not
 * broadcastable), DA_ERR_OUT_OF_MEMORY. Thread-safe for distinct output tensors. */
da_status da_scaled_dot_product_attention(const DLTensor *query, const DLTensor *key,
                                          const DLTensor *value, const DLTensor *attn_mask,
                                          const da_sdpa_options *options, DLTensor *out);

/* da_scaled_dot_product_attention that also writes each query row's log-sum-exp: `lse` float32
 * (B, H, Nq) (rank 2 (H, Nq) for 3-D tensors), any strides, lse[b,h,i] = ln Σ_j exp(s_ij) over the
 * scaled and masked scores s_ij (natural log). Always runs the tiled online-softmax (flash) path,
 * whatever options->algorithm says. A row with every key removed gives output 0 and lse -inf.
 * Two results over disjoint key sets combine with da_merge_attention_partials into the result
 * over their union. Errors: as da_scaled_dot_product_attention, plus DA_ERR_SHAPE / DA_ERR_DTYPE
 * for `lse`. Thread-safe for distinct output tensors. */
da_status da_sdpa_with_lse(const DLTensor *query, const DLTensor *key, const DLTensor *value,
                           const DLTensor *attn_mask, const da_sdpa_options *options, DLTensor *out,
                           DLTensor *lse);

/* Folds one partial attention result (partial_out, partial_lse) into the running (out, lse), in
 * place, in fp32: per row, m = max(lse, partial_lse); w = exp(lse − m), w' = exp(partial_lse − m);
 * out = (w·out + w'·partial_out) / (w + w'); lse = m + ln(w + w'). Rows where both are -inf stay
 * zero with lse -inf. Start from the first partial (or out = 0, lse = -inf) and fold the others in:
 * a fixed order gives bitwise identical results. Shapes: out and partial_out (B, H, N, Dv) float32,
 * lse and partial_lse (B, H, N) float32 (or all one rank lower, B = 1), any strides; the partials
 * are only read. Errors: DA_ERR_INVALID_ARGUMENT (NULL), DA_ERR_SHAPE, DA_ERR_DTYPE. Thread-safe
 * for distinct `out`/`lse`. */
da_status da_merge_attention_partials(DLTensor *out, DLTensor *lse, const DLTensor *partial_out,
                                      const DLTensor *partial_lse);

/* ------------------------------------------------------------------------------------------ */
/* Context parallelism (docs/parallel.md): one attention call split across ranks by sequence      */
/* ------------------------------------------------------------------------------------------ */

/* A group of ranks. In-process communicators are n handles of one process, each used from its
 * own thread; MPI communicators wrap the caller's MPI communicator through the optional plugin
 * libdiffattn-mpi.so.0 (package libdiffattn-mpi0): libdiffattn itself does not link MPI. One
 * communicator must not be used by two threads at once. Release with da_communicator_destroy. */
typedef struct da_communicator_s *da_communicator;

/* n in-process communicators (1 <= n <= 4096) sharing one message fabric: out_array[i] is rank i.
 * Messages are copied at send time; a receive waits for its message. `out_array` must hold n
 * handles; on failure none is created. Errors: DA_ERR_INVALID_ARGUMENT. Thread-safe. */
da_status da_communicator_create_local(int32_t n, da_communicator *out_array);

/* As da_communicator_create_local with an injected link delay, for measuring overlap: each rank's
 * outgoing link carries one message at a time for latency_seconds + bytes / bandwidth_bytes_per_second
 * (bandwidth 0 = infinite). Errors: DA_ERR_INVALID_ARGUMENT (n out of range, negative or non-finite
 * delay). Thread-safe. */
da_status da_communicator_create_local_with_link(int32_t n, double latency_seconds,
                                                 double bandwidth_bytes_per_second,
                                                 da_communicator *out_array);

/* A communicator over the caller's MPI communicator, given as its Fortran handle
 * (MPI_Comm_c2f(comm) in C, comm.py2f() in mpi4py) — so this header needs no mpi.h. Collective:
 * every rank of `fortran_comm` must call it (the plugin duplicates the communicator, so the
 * library's messages never match the caller's). MPI must already be initialised by the caller; the
 * library never initialises or finalises MPI, and destroys its duplicate with the handle (destroy
 * it before MPI_Finalize). The plugin is looked for in $DIFFATTN_MPI_PLUGIN, next to libdiffattn.so,
 * then through the loader's path. Errors: DA_ERR_INVALID_ARGUMENT (NULL), DA_ERR_UNSUPPORTED (the
 * plugin is not installed; the message says what was tried), DA_ERR_IO (MPI not initialised, or
 * an MPI error). */
da_status da_communicator_create_mpi(int64_t fortran_comm, da_communicator *out);

/* Releases a communicator; NULL and stale handles are ignored. */
void da_communicator_destroy(da_communicator comm);

/* This rank's index and the number of ranks. Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT. */
da_status da_communicator_rank(da_communicator comm, int32_t *rank, int32_t *size);

/* Seconds a wait may block before a call fails with DA_ERR_IO (a rank that never makes the
 * matching call); default 120. Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT (<= 0 or
 * non-finite). */
da_status da_communicator_set_timeout(da_communicator comm, double seconds);

/* Bytes this rank has sent to / received from other ranks since creation or the last reset, and
 * the seconds it spent blocked waiting for transfers (the communication not hidden behind
 * compute). Any pointer may be NULL. Errors: DA_ERR_INVALID_HANDLE. May run concurrently with a
 * call on the communicator (the counts are then a snapshot). */
da_status da_communicator_counters(da_communicator comm, int64_t *bytes_sent, int64_t *bytes_received,
                                   double *seconds_waiting);
da_status da_communicator_reset_counters(da_communicator comm);

/* diffusers' ContextParallelConfig: ring_degree × ulysses_degree must equal the communicator's
 * size; rank g sits at ring index g / ulysses_degree and Ulysses index g mod ulysses_degree. */
typedef struct da_context_parallel_config {
    uint32_t struct_size;
    int32_t ring_degree;    /* 1 */
    int32_t ulysses_degree; /* 1 */
    int32_t has_scale;      /* 0: scale = 1/sqrt(head_dim) */
    double scale;
} da_context_parallel_config;

/* Defaults into `config`. Errors: DA_ERR_INVALID_ARGUMENT (NULL, size too small). Thread-safe. */
da_status da_context_parallel_config_init(da_context_parallel_config *config, size_t struct_size);

/* Attention over the whole sequence, each rank holding one equal chunk of it (rank g holds chunk
 * g): query (B, H, n_q, D), key (B, Hkv, n_k, D), value (B, Hkv, n_k, Dv), out (B, H, n_q, Dv),
 * float32, any strides (rank 3 = B 1). `key_mask` (NULL for none) is this rank's key-padding mask,
 * bool (nonzero = attend) or additive float32 (-inf allowed), broadcastable to (B, 1, 1, n_k); it
 * travels with its keys. Ring (ulysses_degree 1): K/V blocks move point-to-point to the next rank
 * while the current block computes, partials merged by log-sum-exp in fp32. Ulysses (ring_degree
 * 1): all-to-all to head shards and back. Unified: a ring of Ulysses groups. GQA (Hkv < H):
 * allowed when H and Hkv both divide by ulysses_degree. Results equal da_scaled_dot_product_attention
 * on the gathered sequence to rounding, and repeat bitwise for a fixed configuration.
 * Collective: every rank calls it with its own shard. Before any data moves the ranks exchange one
 * small descriptor, so a bad input on one rank, ranks disagreeing on the configuration, shard
 * shapes that differ across ranks (uneven shards are not supported), ring × ulysses ≠ size, or
 * heads not divisible by ulysses_degree give the same error on every rank. Errors:
 * DA_ERR_INVALID_HANDLE (comm: this rank returns at once, the others time out), DA_ERR_INVALID_ARGUMENT,
 * DA_ERR_SHAPE, DA_ERR_DTYPE, DA_ERR_VALUE (configuration), DA_ERR_IO (transport failure or timeout),
 * DA_ERR_OUT_OF_MEMORY. */
da_status da_context_parallel_attention(da_communicator comm, const da_context_parallel_config *config,
                                        const DLTensor *query, const DLTensor *key, const DLTensor *value,
                                        const DLTensor *key_mask, DLTensor *out);

/* The equal split of a sequence of `length` tokens over `ranks`: chunk `rank` is [*begin, *begin +
 * *count). Errors: DA_ERR_INVALID_ARGUMENT (NULL, rank out of range), DA_ERR_SHAPE (length not
 * divisible by ranks — uneven shards are not supported). Thread-safe. */
da_status da_context_parallel_shard_range(int64_t length, int32_t ranks, int32_t rank, int64_t *begin,
                                          int64_t *count);

/* All-gathers every rank's `local` float32 tensor along axis `dim` into `full` (the same shape with
 * that axis times the number of ranks), in rank order: the inverse of sharding by
 * da_context_parallel_shard_range. Collective; shapes are checked across ranks first (same errors
 * on every rank). Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT, DA_ERR_SHAPE, DA_ERR_DTYPE,
 * DA_ERR_IO, DA_ERR_OUT_OF_MEMORY. */
da_status da_context_parallel_gather(da_communicator comm, const DLTensor *local, int32_t dim, DLTensor *full);

/* ------------------------------------------------------------------------------------------ */
/* Models (diffusers model classes as trees of named modules)                                 */
/* ------------------------------------------------------------------------------------------ */

/* A model: one of diffusers' 11 model classes ("UNet2DConditionModel", "UNet3DConditionModel",
 * "UNetMotionModel", "I2VGenXLUNet", "AutoencoderKL", "SD3Transformer2DModel",
 * "FluxTransformer2DModel", "PixArtTransformer2DModel", "HunyuanDiT2DModel",
 * "CogVideoXTransformer3DModel", "AuraFlowTransformer2DModel") laid out as diffusers lays it out,
 * built from the class's config.json text. Every attention module is a real Attention; the other
 * modules exist only as containers or as weight nodes filled by loading a checkpoint.
 * Processors are values: setting one processor on every module stores a copy per module.
 * Thread safety: the header's rule (top of file): read calls, forwards of its modules included,
 * may overlap; changing calls (set/fuse/slice/load/offload/caches) must not overlap any call on the
 * model or on what it lent out. */
typedef struct da_model_s *da_model;

/* Module kinds for da_model_module_count / da_model_module_path. */
#define DA_MODULE_CONTAINER 0
#define DA_MODULE_ATTENTION 1
#define DA_MODULE_WEIGHTS 2

/* Creates a model of class `class_name` from `config_json` (the JSON object diffusers saves as
 * config.json; unknown keys are ignored, missing keys take diffusers' defaults; a `_class_name`
 * key, when present, must name `class_name`). The weights start at diffusers' random
 * initialisation. `*out` is NULL on failure. Errors: DA_ERR_INVALID_ARGUMENT (NULL), DA_ERR_NOT_FOUND (unknown class),
 * DA_ERR_VALUE (bad JSON, inconsistent or out-of-range sizes; the message names the field),
 * DA_ERR_TYPE (a field of the wrong JSON type), DA_ERR_UNSUPPORTED (what diffusers refuses with
 * NotImplementedError). Thread-safe. Release with da_model_destroy. */
da_status da_model_create(const char *class_name, const char *config_json, da_model *out);

/* Destroys the model and invalidates every da_attention it lent out. NULL and stale handles are
 * ignored. Pipelines holding the model keep it alive until they are destroyed too. */
void da_model_destroy(da_model model);

/* The model's class name. Static string. Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT. */
da_status da_model_class_name(da_model model, const char **name);

/* ---- attn_processors (diffusers' names and order) ----------------------------------------- */

/* The number of attention modules (entries of diffusers' attn_processors). */
da_status da_model_attn_processor_count(da_model model, int64_t *count);

/* Key `index` of attn_processors, e.g. "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor".
 * The string lives as long as the process. Errors: DA_ERR_INVALID_ARGUMENT (index out of range). */
da_status da_model_attn_processor_name(da_model model, int64_t index, const char **name);

/* The processor under key `name` (with or without the ".processor" suffix). Errors:
 * DA_ERR_NOT_FOUND (no such key). */
da_status da_model_attn_processor_get(da_model model, const char *name, da_processor_config *processor);

/* set_attn_processor(processor): the same processor on every attention module. Any kind may be
 * set and reported, implemented in this build or not (forward then fails with DA_ERR_UNSUPPORTED). */
da_status da_model_set_attn_processor(da_model model, const da_processor_config *processor);

/* set_attn_processor({name: processor}): `count` must equal the number of attention modules
 * (DA_ERR_VALUE, diffusers' message); every name must be a key (DA_ERR_NOT_FOUND). All names are
 * checked before anything changes (diffusers changes modules up to the bad key). */
da_status da_model_set_attn_processors(da_model model, const char *const *names,
                                       const da_processor_config *processors, int64_t count);

/* set_default_attn_processor(). Errors: DA_ERR_STATE (the class has no such method), DA_ERR_VALUE
 * (processor-set rule refuses; diffusers' message). */
da_status da_model_set_default_attn_processor(da_model model);

/* fuse_qkv_projections() / unfuse_qkv_projections(). Fusion is a flag per module: fused processors
 * compute from the separate to_q/to_k/to_v weights, so no second copy of the weights exists.
 * Unfuse restores the processors saved by the first fuse; it is a no-op before any fuse.
 * Errors: DA_ERR_VALUE (models with added-KV processors, diffusers' message). */
da_status da_model_fuse_qkv_projections(da_model model);
da_status da_model_unfuse_qkv_projections(da_model model);

/* set_use_memory_efficient_attention_xformers(valid): enabling fails with DA_ERR_UNSUPPORTED
 * (xformers does not exist on a CPU; nothing changes); disabling resets legacy Attention modules
 * to AttnProcessor2_0 (or AttnProcessor when scale_qk is off) as diffusers does. */
da_status da_model_set_use_memory_efficient_attention_xformers(da_model model, int32_t valid);

/* set_attention_slice modes. */
#define DA_SLICE_NONE 0 /* None: back to the unsliced processors */
#define DA_SLICE_AUTO 1 /* "auto": heads // 2 per layer */
#define DA_SLICE_MAX 2  /* "max": 1 per layer */
#define DA_SLICE_SIZE 3 /* one size for every layer: sizes[0], count 1 */
#define DA_SLICE_LIST 4 /* one entry per layer in attn_processors order; 0 in an entry means None */

/* set_attention_slice (UNet2DConditionModel, UNet3DConditionModel only). Errors: DA_ERR_STATE
 * (class without the method), DA_ERR_VALUE (list length, size > heads — diffusers' messages —
 * and sizes below 1, which diffusers accepts and then fails on at forward). */
da_status da_model_set_attention_slice(da_model model, int32_t mode, const int64_t *sizes, int64_t count);

/* ---- modules -------------------------------------------------------------------------------- */

/* The attention module at `path` ("transformer_blocks.0.attn", or an attn_processors key such as
 * da_model_attn_processor_name gives: "transformer_blocks.0.attn.processor") as a BORROWED da_attention: usable
 * with every da_attention_* call, owned by the model, the same handle on every call for a path,
 * valid until the model is destroyed (afterwards calls answer DA_ERR_INVALID_HANDLE).
 * da_attention_destroy on it does nothing. Errors: DA_ERR_NOT_FOUND (no module, or not attention). */
da_status da_model_get_attention(da_model model, const char *path, da_attention *out);

/* Number of modules of `kind` (DA_MODULE_*) and the dotted path of the index-th one, pre-order.
 * Paths live as long as the process. */
da_status da_model_module_count(da_model model, int32_t kind, int64_t *count);
da_status da_model_module_path(da_model model, int32_t kind, int64_t index, const char **path);

/* diffusers' class name of the module at `path` ("Attention", "FluxAttention", "Module"). */
da_status da_model_module_class(da_model model, const char *path, const char **class_name);

/* ---- weights ---------------------------------------------------------------------------------- */

/* Result of a load: attention parameters loaded / missing, names under an attention module that
 * it lacks, other tensors kept as weight nodes or skipped. */
typedef struct da_load_report {
    uint32_t struct_size;
    int64_t attention_loaded;
    int64_t attention_missing;
    int64_t unexpected;
    int64_t weights_kept;
    int64_t skipped;
} da_load_report;

#define DA_LOAD_STRICT 1      /* missing or unexpected attention parameters are an error */
#define DA_LOAD_SKIP_OTHERS 2 /* do not keep non-attention tensors as weight nodes */

/* Loads a safetensors file by diffusers' parameter names (F32/F16/BF16, widened to float32). The
 * file is memory-mapped and checked (header JSON, dtypes, offsets against the file size) before
 * anything is loaded. `report` may be NULL. Errors: DA_ERR_IO (cannot open), DA_ERR_VALUE (bad
 * file; the message names the tensor; strict failures list the names), DA_ERR_DTYPE, DA_ERR_SHAPE. */
da_status da_model_load_safetensors(da_model model, const char *path, int32_t flags, da_load_report *report);

/* load_state_dict: `count` (name, float32 tensor) pairs. Same rules and errors as above. */
da_status da_model_load_state_dict(da_model model, const char *const *names, const DLTensor *tensors,
                                   int64_t count, int32_t flags, da_load_report *report);

/* diffusers' ModelMixin.from_pretrained(directory) for a local folder: reads config.json (its
 * `_class_name` must match `class_name`; class_name NULL = the class config.json names), then the
 * weights: diffusion_pytorch_model.safetensors, or every shard that
 * diffusion_pytorch_model.safetensors.index.json names (F32/F16/BF16). Missing and unexpected names
 * are counted over all shards (`report`, which may be NULL; the names: da_model_load_key).
 * Flags: DA_LOAD_STRICT (a missing or unexpected attention weight is an error and no model is
 * made), DA_LOAD_SKIP_OTHERS (as for da_model_load_safetensors), DA_LOAD_ALLOW_RANDOM_INIT (weights missing from the folder keep their random
 * initialisation). Without DA_LOAD_ALLOW_RANDOM_INIT an attention module missing a weight refuses
 * to run: its forward fails with DA_ERR_STATE naming the weight (DA_KEYS_UNLOADED lists them) until
 * that weight is loaded. `*out` is NULL on failure. Thread-safe. Errors: DA_ERR_INVALID_ARGUMENT
 * (NULL, unknown flag), DA_ERR_IO (no config.json, no weights file, a shard named by the index is
 * missing — the message names the file), DA_ERR_VALUE (bad JSON or safetensors, `_class_name`
 * naming another class, strict failures listing the names), DA_ERR_NOT_FOUND (unknown class), and
 * da_model_create's errors. Release with da_model_destroy. */
#define DA_LOAD_ALLOW_RANDOM_INIT 4
da_status da_model_load_pretrained(const char *directory, const char *class_name, int32_t flags,
                                   da_model *out, da_load_report *report);

/* The names of the last successful load (any da_model_load_* call): DA_KEYS_MISSING (attention
 * weights the checkpoint lacked), DA_KEYS_UNEXPECTED (names under an attention module that it does
 * not have); DA_KEYS_UNLOADED: the attention weights still at random initialisation that make
 * their module refuse to run (a model from da_model_load_pretrained without
 * DA_LOAD_ALLOW_RANDOM_INIT; loading a weight removes it). Names live as long as the process.
 * Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT (NULL, unknown `which`, index out of range). */
#define DA_KEYS_MISSING 0
#define DA_KEYS_UNEXPECTED 1
#define DA_KEYS_UNLOADED 2
da_status da_model_load_key_count(da_model model, int32_t which, int64_t *count);
da_status da_model_load_key(da_model model, int32_t which, int64_t index, const char **name);

/* Entries the model holds (attention parameters and kept weights), in tree order; the name lives
 * as long as the process. */
da_status da_model_weight_count(da_model model, int64_t *count);
da_status da_model_weight_info(da_model model, int64_t index, da_weight_info *info);

/* Copies weight `name` (full diffusers name) into `out` (float32, exactly its shape). */
da_status da_model_get_weight(da_model model, const char *name, DLTensor *out);

/* ------------------------------------------------------------------------------------------ */
/* Pipelines (a named set of models with diffusers' pipeline-level switches)                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct da_pipeline_s *da_pipeline;

/* Creates an empty pipeline. Thread safety as for models. Release with da_pipeline_destroy. */
da_status da_pipeline_create(da_pipeline *out);
void da_pipeline_destroy(da_pipeline pipeline);

/* Adds `model` under `name` ("unet", "transformer", "vae", ...). The pipeline keeps its own
 * reference: destroying the model handle later does not affect the pipeline.
 * Errors: DA_ERR_VALUE (empty or duplicate name). */
da_status da_pipeline_add(da_pipeline pipeline, const char *name, da_model model);

/* fuse_qkv_projections(unet, vae) / unfuse_qkv_projections(unet, vae). Errors: DA_ERR_STATE
 * (no such component; unfuse before any fuse), DA_ERR_VALUE (VAE not an AutoencoderKL, after the
 * UNet has been fused — diffusers' order). */
da_status da_pipeline_fuse_qkv_projections(da_pipeline pipeline, int32_t unet, int32_t vae);
da_status da_pipeline_unfuse_qkv_projections(da_pipeline pipeline, int32_t unet, int32_t vae);

/* enable_attention_slicing(mode, sizes) (DA_SLICE_NONE = disable_attention_slicing) on every
 * component that has set_attention_slice; others are skipped. */
da_status da_pipeline_set_attention_slicing(da_pipeline pipeline, int32_t mode, const int64_t *sizes, int64_t count);

/* enable_/disable_xformers_memory_efficient_attention over every component. */
da_status da_pipeline_set_use_memory_efficient_attention_xformers(da_pipeline pipeline, int32_t valid);

/* ------------------------------------------------------------------------------------------ */
/* Hooks (diffusers' hooks/: HookRegistry, ModelHook, group offloading, pyramid attention      */
/* broadcast). A hook wraps one module's forward; hooks of a module run in diffusers' order:    */
/* the last registered is outermost (pre C, pre B, pre A, forward, post A, post B, post C).     */
/*                                                                                            */
/* The host drives the model: it calls attention modules (da_model_get_attention, then          */
/* da_attention_forward runs the module's hooks), brackets host-run modules it wants hooked with */
/* da_hook_registry_enter / _exit, and brackets every denoising step with da_model_begin_step /  */
/* da_model_end_step (the root module's pre- and post-forward).                                 */
/*                                                                                            */
/* Threading: the header's rule (top of file). Forwards whose hooks are stateless (group         */
/* offloading pins the weights they use) may overlap; steps, (un)registrations, enter/exit and   */
/* calls wrapped by stateful hooks (caches, PAB, user hooks keeping state) are changing calls:   */
/* one at a time per model; different models are independent. Every callback of this section    */
/* (hook callbacks, timestep and weight callbacks) runs synchronously on the thread that made    */
/* the call which triggered it, before that call returns -- never on a library worker thread     */
/* (the group offloading prefetch thread only copies weights).                                  */
/* Errors: handles are checked first (DA_ERR_INVALID_HANDLE); a callback's non-zero status fails */
/* the call that ran it with that status (unknown values become DA_ERR_INTERNAL) and a message   */
/* naming the callback and the module path.                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct da_hook_registry_s *da_hook_registry;
typedef struct da_hook_s *da_hook;

/* A user hook: callbacks (any may be NULL = diffusers' default) and a user-data pointer passed
 * back to each. A callback returns DA_OK or a non-zero status; a non-zero status aborts the call
 * in progress, which then fails with that status and a message naming the hook and the module.
 * `path` is the module's dotted path ("" for the root and for a standalone da_attention).
 * pre_forward: `hidden_states` is a writable float32 copy of the module's input (NULL for
 *   host-run modules); changes made to it in place are what the module receives.
 * post_forward: `outputs` are the module's outputs (writable in place; NULL/0 for host-run modules).
 *   The tensors passed to pre_forward / post_forward are library-owned copies valid only during
 *   the callback; their shape must not change.
 * initialize_hook runs inside da_hook_registry_register, deinitialize_hook inside
 * da_hook_registry_remove, reset_state inside da_hook_registry_reset_stateful_hooks, and
 * pre_/post_forward inside the call that runs the module (da_attention_forward and _alloc,
 * da_hook_registry_enter / _exit, da_model_module_begin / _end, da_model_begin_step / _end_step).
 * user_data: owned by the caller; the library only passes it back. It must stay valid until
 * `destroy` is called (or, without `destroy`, until the hook handle is destroyed and every
 * registration is gone).
 * destroy: called exactly once, with user_data, when the last reference goes: the handle
 *   (da_hook_destroy) and every registration (da_hook_registry_remove, or destroying the model or
 *   attention module that holds it), on the thread making that last call, possibly while the
 *   library holds an internal lock: destroy must not call libdiffattn functions. May be NULL. */
/* ---- argument and output lists (ModelHook, whole: issue 16) ------------------------------------ */
/* A da_hook_values is an ordered list of named values: a module call's arguments (positional ones
 * first, then keywords, as diffusers' `*args, **kwargs`) or its outputs (positional, named "").
 * An attention module's call lists `hidden_states` (positional), then the keywords it was given:
 * encoder_hidden_states, attention_mask, temb, image_rotary_emb_cos / _sin, ip_hidden_states_<i>, ...
 * A value is a float32 CPU tensor, a number, or none. Lists handed to a callback are borrowed for the
 * callback's duration; tensor views stay valid until that entry is replaced or removed. Replacing a
 * tensor copies the caller's tensor (any shape; strides honoured). Not thread-safe: one list per
 * call in progress. */
typedef struct da_hook_values_s da_hook_values;

#define DA_VALUE_NONE 0
#define DA_VALUE_TENSOR 1
#define DA_VALUE_NUMBER 2

/* An empty list the caller owns (for da_model_call_module); release with da_hook_values_destroy. */
da_status da_hook_values_create(da_hook_values **out);
void da_hook_values_destroy(da_hook_values *values);
da_status da_hook_values_count(const da_hook_values *values, int64_t *count);
/* Entry `index`: its name (valid until the entry changes), DA_VALUE_* kind, and 1 when positional.
 * Any out pointer may be NULL. Errors: DA_ERR_INVALID_ARGUMENT (index out of range). */
da_status da_hook_values_info(const da_hook_values *values, int64_t index, const char **name, int32_t *kind,
                              int32_t *positional);
/* A writable view of a tensor entry (*out's shape array is owned by the list). Writing through it
 * edits the value in place. Errors: DA_ERR_TYPE (not a tensor). */
da_status da_hook_values_tensor(da_hook_values *values, int64_t index, DLTensor *out);
da_status da_hook_values_number(const da_hook_values *values, int64_t index, double *out);
/* Replace entry `index` (kind changes as needed). `tensor` NULL = none. Errors: DA_ERR_DTYPE
 * (not float32 CPU), DA_ERR_OUT_OF_MEMORY. */
da_status da_hook_values_set_tensor(da_hook_values *values, int64_t index, const DLTensor *tensor);
da_status da_hook_values_set_number(da_hook_values *values, int64_t index, double value);
/* Insert a new entry before `index` (== count appends). A positional entry must stand before every
 * keyword, a keyword after every positional one (DA_ERR_VALUE otherwise); keyword names are
 * unique (DA_ERR_VALUE). `tensor` NULL inserts none. */
da_status da_hook_values_insert_tensor(da_hook_values *values, int64_t index, const char *name, int32_t positional,
                                       const DLTensor *tensor);
da_status da_hook_values_insert_number(da_hook_values *values, int64_t index, const char *name, int32_t positional,
                                       double value);
da_status da_hook_values_remove(da_hook_values *values, int64_t index);
/* Removes every entry. */
da_status da_hook_values_clear(da_hook_values *values);

/* A module's forward as the library calls it: read `args`, append the outputs to `outputs` (empty
 * on entry). Returns DA_OK or a status (the call then fails with it). */
typedef int32_t (*da_forward_fn)(void *context, const char *path, da_hook_values *args, da_hook_values *outputs);

typedef struct da_hook_callbacks {
    uint32_t struct_size;
    int32_t is_stateful; /* reset_state is called by da_hook_registry_reset_stateful_hooks */
    void *user_data;
    int32_t (*initialize_hook)(void *user_data, const char *path);
    int32_t (*deinitialize_hook)(void *user_data, const char *path);
    int32_t (*pre_forward)(void *user_data, const char *path, DLTensor *hidden_states);
    int32_t (*post_forward)(void *user_data, const char *path, DLTensor *outputs, int32_t num_outputs);
    int32_t (*reset_state)(void *user_data, const char *path);
    void (*destroy)(void *user_data);
    /* ---- since the struct grew (issue 16); a caller compiled against the older, shorter struct
     * is still accepted (these are then NULL). When set, they replace pre_forward / post_forward. */
    /* pre_forward(module, *args, **kwargs): edit `args` in place (replace, insert, remove). */
    int32_t (*pre_forward_args)(void *user_data, const char *path, da_hook_values *args);
    /* new_forward(module, *args, **kwargs): replaces the computation. Fill `outputs`; to run what
     * the hook wraps (inner hooks and the module itself), call original(original_context, path,
     * args, outputs) -- any number of times, with any args. NULL = no new_forward. */
    int32_t (*new_forward)(void *user_data, const char *path, da_hook_values *args, da_hook_values *outputs,
                           da_forward_fn original, void *original_context);
    /* post_forward(module, output): edit `outputs` in place (any count and shapes). */
    int32_t (*post_forward_args)(void *user_data, const char *path, da_hook_values *outputs);
} da_hook_callbacks;

da_status da_hook_callbacks_init(da_hook_callbacks *callbacks, size_t struct_size);

/* Creates a hook from callbacks (copied). One hook may be registered on several modules.
 * Errors: DA_ERR_INVALID_ARGUMENT (NULL, struct_size too small). On failure no callback is
 * called and destroy is not called. Thread-safe. */
da_status da_hook_create(const da_hook_callbacks *callbacks, da_hook *out);
/* Releases the handle; registrations keep the hook alive until removed (then `destroy` runs).
 * Accepts NULL. Thread-safe. */
void da_hook_destroy(da_hook hook);

/* The registry of the module at `path` of a model ("" = the root), or of a standalone attention
 * module (also a borrowed one: a model's module shares the model's registry). Created on first
 * use; the handle is owned by the module (no destroy) and valid while the model / attention is.
 * Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT (NULL path or out), DA_ERR_NOT_FOUND
 * (no module at `path`). */
da_status da_model_hook_registry(da_model model, const char *path, da_hook_registry *out);
da_status da_attention_hook_registry(da_attention attention, da_hook_registry *out);

/* register_hook(hook, name): the registration holds its own reference to the hook. Errors:
 * DA_ERR_INVALID_HANDLE (registry or hook), DA_ERR_INVALID_ARGUMENT (NULL name), DA_ERR_VALUE
 * ("Hook with name ... already exists ..."), or the status initialize_hook returned (then nothing
 * is registered). */
da_status da_hook_registry_register(da_hook_registry registry, const char *name, da_hook hook);
/* remove_hook(name, recurse): absent names are a no-op; `recurse` also removes it from every
 * descendant module. deinitialize_hook failing leaves the hook registered. */
da_status da_hook_registry_remove(da_hook_registry registry, const char *name, int32_t recurse);
/* get_hook(name) != None, as 1 / 0 in *present (built-in hooks included). */
da_status da_hook_registry_has_hook(da_hook_registry registry, const char *name, int32_t *present);
/* Hook names in registration order; names live as long as the process. */
da_status da_hook_registry_hook_count(da_hook_registry registry, int64_t *count);
da_status da_hook_registry_hook_name(da_hook_registry registry, int64_t index, const char **name);
/* reset_stateful_hooks(recurse): reset_state of stateful hooks, outermost first, then descendants. */
da_status da_hook_registry_reset_stateful_hooks(da_hook_registry registry, int32_t recurse);
/* The pre-forward / post-forward halves of a host-run module's call (its hooks see no tensors). */
da_status da_hook_registry_enter(da_hook_registry registry);
da_status da_hook_registry_exit(da_hook_registry registry);

/* Brackets one denoising step (the root's forward): begin runs the root's pre-forward hooks
 * (group offloading onloads the model's own group), end runs its post-forward hooks (groups are
 * released; the first step's order is learned for prefetching). `timestep` is what a pyramid
 * attention broadcast without a callback reads. Errors: DA_ERR_STATE (begin twice / end without
 * begin), DA_ERR_IO (an offload file could not be read or written). */
da_status da_model_begin_step(da_model model, double timestep);
da_status da_model_end_step(da_model model);

/* Calls the host-run module at `path` through its hooks, diffusers' order: pre_forwards outermost
 * first, the first new_forward (whose `original` runs the rest), `forward` for the module itself,
 * then post_forwards innermost first. `args` is read and may be edited by the hooks; `outputs`
 * (cleared first) receives the result. Nested modules are called from inside `forward` the same
 * way, so a host mirrors its module tree. Built-in hooks of the module run as around
 * da_hook_registry_enter / _exit. Errors: DA_ERR_NOT_FOUND (path), the status of a hook or of
 * `forward` (its message kept). A ModuleTree model (da_model_create("ModuleTree",
 * "{\"modules\": [\"linear_1\", \"blocks.0.proj_in\", ...]}")) gives any host its module tree. */
da_status da_model_call_module(da_model model, const char *path, da_hook_values *args, da_hook_values *outputs,
                               da_forward_fn forward, void *context);

/* ---- group offloading (spec hooks §6) --------------------------------------------------------- */

/* ---- group offloading (diffusers hooks/group_offloading.py) ---------------------------------- */

#define DA_OFFLOAD_BLOCK_LEVEL 0
#define DA_OFFLOAD_LEAF_LEVEL 1

/* enable_group_offload options, diffusers' names and defaults. On a CPU: the offload target is
 * files under offload_to_disk_path (one per group, written when offloading is applied, checked by
 * size and checksum when read back, deleted when offloading is disabled or the model destroyed; the
 * directory stays), or without it a packed in-memory copy; use_stream = a
 * background prefetch thread (forces num_blocks_per_group to 1; the first step learns the order);
 * non_blocking, record_stream (needs use_stream), low_cpu_mem_usage and exclude_kwargs are
 * accepted and change nothing here. block_modules: children treated as sub-models. */
typedef struct da_group_offload_config {
    uint32_t struct_size;
    int32_t offload_type;         /* DA_OFFLOAD_*; default block level */
    int64_t num_blocks_per_group; /* 0 = None (an error for block level) */
    int32_t non_blocking;
    int32_t use_stream;
    int32_t record_stream;
    int32_t low_cpu_mem_usage;
    const char *offload_to_disk_path; /* NULL = in memory */
    const char *const *block_modules; /* NULL = none */
    int64_t num_block_modules;
    const char *const *exclude_kwargs;
    int64_t num_exclude_kwargs;
} da_group_offload_config;

da_status da_group_offload_config_init(da_group_offload_config *config, size_t struct_size);

/* Applies group offloading; onload_device must be "cpu" (NULL = "cpu"). All weights are written
 * to the target first: on failure (DA_ERR_IO, DA_ERR_VALUE with diffusers' messages) nothing has
 * changed. While enabled, weights cannot be edited (loads and fusing fail with DA_ERR_STATE);
 * calling a module, or reading its weight with da_model_get_weight, onloads its group.
 * Errors while running: DA_ERR_IO from a missing, truncated or corrupted file (the group stays
 * offloaded; the next call retries, so restoring the file makes the model usable again). */
da_status da_model_enable_group_offload(da_model model, const char *onload_device, const da_group_offload_config *config);

/* diffusers' enable_layerwise_casting(storage_dtype, compute_dtype=torch.float32,
 * skip_modules_pattern): the weights and biases of every Linear layer whose name matches none of
 * the patterns are stored as `storage_dtype` (half the memory; round to nearest even) and widened
 * to float32 inside the projection GEMM. Patterns are regular expressions searched in the layer
 * name ("to_q"; in a model the full path, "transformer_blocks.0.attn.to_q"). skip_patterns NULL
 * (with skip_count 0) means diffusers' defaults: "pos_embed", "patch_embed", "norm", "^proj_in$", "^proj_out$";
 * otherwise `skip_count` strings (0 = cast every Linear layer). Later weight loads are stored in
 * the same format. Errors: DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT (format, NULL string,
 * bad pattern), DA_ERR_STATE (group offloading enabled). Must not overlap other calls on the handle. */
da_status da_attention_enable_layerwise_casting(da_attention attention, int32_t storage_dtype,
                                                const char *const *skip_patterns, size_t skip_count);
da_status da_model_enable_layerwise_casting(da_model model, int32_t storage_dtype,
                                            const char *const *skip_patterns, size_t skip_count);

/* Onloads everything and removes the hooks. A group whose file cannot be read stays released and
 * the call reports DA_ERR_IO; reload those weights to make the model whole. */
da_status da_model_disable_group_offload(da_model model);

typedef struct da_group_offload_stats {
    uint32_t struct_size;
    int32_t order_learned;
    int64_t groups;
    int64_t resident_groups;
    int64_t resident_bytes;
    int64_t peak_resident_bytes; /* weight bytes resident or prefetched at once, since enabling */
    int64_t total_bytes;
    int64_t onloads;
    int64_t prefetched;
} da_group_offload_stats;

/* Counters; DA_ERR_STATE when group offloading is not enabled. */
da_status da_model_group_offload_stats(da_model model, da_group_offload_stats *stats);

/* ---- pyramid attention broadcast (diffusers hooks/pyramid_attention_broadcast.py) ------------ */

/* Returns the current timestep in *timestep; a non-zero status fails the attention call. Called
 * with the config's callback_user_data, on the thread running the hooked call, while the hook is
 * applied. */
typedef int32_t (*da_timestep_callback)(void *user_data, double *timestep);

/* PyramidAttentionBroadcastConfig. Skip ranges: 0 = None. Identifier lists: NULL = diffusers'
 * defaults (regular expressions searched in the module path). current_timestep_callback NULL =
 * the timestep given to da_model_begin_step. The strings are copied when the config is applied;
 * callback_user_data is not: it must stay valid while the hooks are applied (until removed with
 * da_hook_registry_remove or da_model_disable_cache, or the model is destroyed); the library
 * never frees it. */
typedef struct da_pab_config {
    uint32_t struct_size;
    int64_t spatial_attention_block_skip_range;
    int64_t temporal_attention_block_skip_range;
    int64_t cross_attention_block_skip_range;
    double spatial_attention_timestep_skip_range[2]; /* default (100, 800), strict */
    double temporal_attention_timestep_skip_range[2];
    double cross_attention_timestep_skip_range[2];
    const char *const *spatial_attention_block_identifiers;
    int64_t num_spatial_attention_block_identifiers;
    const char *const *temporal_attention_block_identifiers;
    int64_t num_temporal_attention_block_identifiers;
    const char *const *cross_attention_block_identifiers;
    int64_t num_cross_attention_block_identifiers;
    da_timestep_callback current_timestep_callback;
    void *callback_user_data;
} da_pab_config;

da_status da_pab_config_init(da_pab_config *config, size_t struct_size);

/* apply_pyramid_attention_broadcast: hooks "pyramid_attention_broadcast" on the matching
 * attention modules (spatial, then temporal, then cross; diffusers' classification). With no
 * skip range set, spatial = 2 is used (diffusers' default). *hooked (may be NULL) receives the
 * number of modules hooked. Reset between runs with da_hook_registry_reset_stateful_hooks on the
 * root. A cached output is a copy: callers own what da_attention_forward wrote. */
da_status da_model_apply_pyramid_attention_broadcast(da_model model, const da_pab_config *config, int64_t *hooked);

/* ---- caches and layer skip (diffusers hooks/ folder; TeaCache from its paper; docs/caches.md) -- */
/*                                                                                            */
/* THE BLOCK PROTOCOL. The host runs transformer blocks (and feed-forwards) itself, so caches   */
/* that skip them are asked around each host-run module, by its path:                         */
/*                                                                                            */
/*     da_model_begin_step(m, t);                                                             */
/*     for each block path p (da_model_transformer_block_path):                               */
/*         io.hidden_states = &h; io.encoder_hidden_states = &e (or NULL);                    */
/*         io.modulated_input = (first block, TeaCache) ? &norm1_out : NULL;                  */
/*         da_model_module_begin(m, p, &io, &run);                                            */
/*         if (run) { run_block(p, &h, &e); da_model_module_end(m, p, &io); }                 */
/*         // not run: h and e already hold the block's output (cached residual added,       */
/*         // or the inputs passed through unchanged)                                          */
/*     da_model_end_step(m);                                                                  */
/*                                                                                            */
/* h and e are in/out float32 tensors: a hook may overwrite them in place (same shape) in       */
/* begin (the output of a skipped module) and in end (FirstBlockCache adds the cached tail      */
/* residual to the first block's output and skips the rest). Call module_end only after running */
/* the module, with the same io. begin also runs the module's ordinary pre-forward hooks (and    */
/* their post-forward halves when it skips), end the post-forward ones. Modules without cache   */
/* hooks always answer run = 1, so a host can use the protocol unconditionally.                  */
/* Caches keep per-context state (diffusers' cache_context): da_model_set_cache_context(m,      */
/* "cond") before the conditional pass, "uncond" before the unconditional one. FirstBlockCache  */
/* and TaylorSeer require a context (DA_ERR_VALUE "No cache context is set ..."); MagCache and   */
/* TeaCache use "inference" when none is set. Reset between runs with                          */
/* da_hook_registry_reset_stateful_hooks on the root (MagCache/TeaCache also wrap around after   */
/* num_inference_steps).                                                                       */
/*                                                                                            */
/* Every da_model_apply_* call: errors DA_ERR_INVALID_HANDLE, DA_ERR_INVALID_ARGUMENT (NULL      */
/* config, struct_size too small, a negative count or a NULL list with a non-zero count),        */
/* DA_ERR_VALUE (diffusers' config checks, bad regular expressions); on error nothing is hooked. */
/* Lists and strings in a config are copied when it is applied. callback_user_data is not: it   */
/* must stay valid while the hooks are applied (until da_hook_registry_remove of their names,   */
/* da_model_disable_cache, or destroying the model); the library never frees it. The callbacks  */
/* run on the thread of the call that triggered them (see the Hooks section), with               */
/* callback_user_data; a non-zero status fails that call.                                       */

/* The output-buffer form (issue 16): set `outputs` to num_outputs float32 buffers shaped as the
 * module's outputs (which may differ from its inputs: Flux's proj_out maps 3072 -> 64 channels).
 * Then hidden_states / encoder_hidden_states are inputs only; a skipped module's output is written
 * into `outputs` (DA_ERR_SHAPE when a cached output does not fit a buffer); a run module's outputs
 * are what the host wrote there before da_model_module_end (hooks may overwrite them). Stream order:
 * outputs[0] = hidden states, outputs[1] = encoder hidden states (when the module has that stream).
 * A caller compiled against the shorter struct gets the in-place form. */
typedef struct da_block_io {
    uint32_t struct_size;
    DLTensor *hidden_states;          /* in/out, float32 CPU, required */
    DLTensor *encoder_hidden_states;  /* in/out, NULL when the module has no encoder stream */
    const DLTensor *modulated_input;  /* TeaCache: the first block's timestep-modulated input */
    DLTensor *outputs;                /* since issue 16: NULL = in-place form; else num_outputs buffers */
    int32_t num_outputs;
} da_block_io;

da_status da_block_io_init(da_block_io *io, size_t struct_size);

/* Before a host-run module: *run = 1 → run it, then call da_model_module_end; *run = 0 → skipped,
 * io holds its output. Errors: DA_ERR_NOT_FOUND (path), DA_ERR_SHAPE (a cached tensor does not fit
 * the stream), DA_ERR_VALUE (no cache context; TeaCache without modulated_input at the head). */
da_status da_model_module_begin(da_model model, const char *path, da_block_io *io, int32_t *run);
/* After running it: hooks read (and may overwrite in place) the outputs. */
da_status da_model_module_end(da_model model, const char *path, da_block_io *io);

/* The transformer blocks the block caches chain: elements of the root's block lists
 * (transformer_blocks, single_transformer_blocks, blocks, layers, ...) in child order. Path
 * strings live as long as the process. */
da_status da_model_transformer_block_count(da_model model, int64_t *count);
da_status da_model_transformer_block_path(da_model model, int64_t index, const char **path);

/* cache_context(name): which per-context cache state the next calls use; NULL clears. */
da_status da_model_set_cache_context(da_model model, const char *name);

/* FirstBlockCacheConfig: run the first block; when its residual changed by at most `threshold`
 * (mean|r − r_last_computed| / mean|r_last_computed|) the rest of the blocks are skipped and the
 * cached tail residual is added. Hooks: fbc_leader_block_hook, fbc_block_hook. */
typedef struct da_first_block_cache_config {
    uint32_t struct_size;
    double threshold; /* default 0.05 */
} da_first_block_cache_config;

da_status da_first_block_cache_config_init(da_first_block_cache_config *config, size_t struct_size);
/* apply_first_block_cache; needs at least two blocks (DA_ERR_VALUE). *hooked: blocks (may be NULL). */
da_status da_model_apply_first_block_cache(da_model model, const da_first_block_cache_config *config, int64_t *hooked);

/* FasterCacheConfig (diffusers' names and defaults). Attention outputs of matching modules are
 * extrapolated from their last two (newer + (newer − older) × weight) on skipped calls; a call in
 * the timestep range is skipped only when the batch is smaller than the first call's (the
 * unconditional half was dropped) or the model is guidance distilled. The denoiser rule: after
 * da_model_begin_step, da_model_faster_cache_skips_unconditional says whether to run only the
 * conditional half; pass the denoiser output through da_model_faster_cache_denoiser_output.
 * Hooks: faster_cache_denoiser (root), faster_cache_block. Ranges are strict (low < t < high). */
typedef int32_t (*da_attention_weight_callback)(void *user_data, const char *path, double *weight);
typedef int32_t (*da_frequency_weight_callback)(void *user_data, double *weight);

typedef struct da_faster_cache_config {
    uint32_t struct_size;
    int64_t spatial_attention_block_skip_range;  /* default 2; 0 = None */
    int64_t temporal_attention_block_skip_range; /* default 0 = None */
    double spatial_attention_timestep_skip_range[2];        /* (-1, 681) */
    double temporal_attention_timestep_skip_range[2];       /* (-1, 681) */
    double low_frequency_weight_update_timestep_range[2];   /* (99, 901) */
    double high_frequency_weight_update_timestep_range[2];  /* (-1, 301) */
    double alpha_low_frequency;                             /* 1.1 */
    double alpha_high_frequency;                            /* 1.1 */
    int64_t unconditional_batch_skip_range;                 /* 5 */
    double unconditional_batch_timestep_skip_range[2];      /* (-1, 641) */
    const char *const *spatial_attention_block_identifiers; /* NULL = diffusers' defaults */
    int64_t num_spatial_attention_block_identifiers;
    const char *const *temporal_attention_block_identifiers;
    int64_t num_temporal_attention_block_identifiers;
    const char *tensor_format;          /* "BCFHW" (NULL), "BFCHW" or "BCHW" */
    int32_t is_guidance_distilled;
    da_timestep_callback current_timestep_callback; /* NULL = da_model_begin_step's timestep */
    da_attention_weight_callback attention_weight_callback; /* NULL = 0.5 */
    void *callback_user_data;
    /* since issue 16 (the older, shorter struct is still accepted): diffusers'
     * low/high_frequency_weight_callback, called on each step that skips the unconditional half;
     * NULL = alpha_* inside the matching timestep range, else 1. They get callback_user_data. */
    da_frequency_weight_callback low_frequency_weight_callback;
    da_frequency_weight_callback high_frequency_weight_callback;
} da_faster_cache_config;

da_status da_faster_cache_config_init(da_faster_cache_config *config, size_t struct_size);
/* apply_faster_cache. *hooked: attention modules hooked (may be NULL). */
da_status da_model_apply_faster_cache(da_model model, const da_faster_cache_config *config, int64_t *hooked);
/* This step's unconditional-branch decision (0 when FasterCache is not applied). */
da_status da_model_faster_cache_skips_unconditional(da_model model, int32_t *skip);
/* The denoiser hook's output half. `output` is (B, ..., H, W): with the unconditional half skipped
 * it is the conditional output and `full_output` (2B, ...) receives [uncond; cond] (uncond from the
 * recorded low/high frequency deltas); otherwise it is [uncond; cond], the deltas are recorded and
 * `full_output` (same shape) receives a copy. DA_ERR_STATE when FasterCache is not applied. */
da_status da_model_faster_cache_denoiser_output(da_model model, const DLTensor *output, DLTensor *full_output);

/* TaylorSeerCacheConfig. Modules are selected by full-match of their path (default: paths
 * matching ^(blocks|transformer_blocks|single_transformer_blocks|temporal_transformer_blocks).*attn);
 * attention modules are predicted inside da_attention_forward, host-run ones (lite mode: blocks
 * inactive, proj_out active) through the block protocol. Hook: taylorseer_cache. */
typedef struct da_taylorseer_cache_config {
    uint32_t struct_size;
    int64_t cache_interval;            /* 5 */
    int64_t disable_cache_before_step; /* 3 */
    int64_t disable_cache_after_step;  /* -1 = None */
    int64_t max_order;                 /* 1 */
    int32_t taylor_factors_float32;    /* 0 = bfloat16 factors (diffusers' default) */
    const char *const *skip_predict_identifiers; /* NULL = None */
    int64_t num_skip_predict_identifiers;
    const char *const *cache_identifiers;        /* NULL = defaults */
    int64_t num_cache_identifiers;
    int32_t use_lite_mode;
} da_taylorseer_cache_config;

da_status da_taylorseer_cache_config_init(da_taylorseer_cache_config *config, size_t struct_size);
da_status da_model_apply_taylorseer_cache(da_model model, const da_taylorseer_cache_config *config, int64_t *hooked);

/* MagCacheConfig. mag_ratios (NULL/0 only when calibrating) are resampled to num_inference_steps
 * when their length differs. Calibration computes every step and records the ratios, read with
 * da_model_mag_cache_calibration after a full run. Hooks: mag_cache_leader_block_hook,
 * mag_cache_block_hook. */
typedef struct da_mag_cache_config {
    uint32_t struct_size;
    double threshold;            /* 0.06 */
    int64_t max_skip_steps;      /* 3 */
    double retention_ratio;      /* 0.2 */
    int64_t num_inference_steps; /* 28 */
    const double *mag_ratios;
    int64_t num_mag_ratios;
    int32_t calibrate;
} da_mag_cache_config;

da_status da_mag_cache_config_init(da_mag_cache_config *config, size_t struct_size);
da_status da_model_apply_mag_cache(da_model model, const da_mag_cache_config *config, int64_t *hooked);
/* The last completed calibration run's ratios: *count receives their number; up to `capacity` are
 * copied to `ratios` (may be NULL with capacity 0). DA_ERR_STATE before a calibration completed. */
da_status da_model_mag_cache_calibration(da_model model, double *ratios, int64_t capacity, int64_t *count);

/* TeaCacheConfig (not in diffusers; from the paper): at the first block, the relative L1 change of
 * modulated_input since the previous step, rescaled by the polynomial `coefficients` (highest
 * degree first), is accumulated; below rel_l1_thresh the stack is skipped and its last residual
 * added; otherwise (and at the first and last step) it runs and the sum resets.
 * A skip adds the residual to the hidden stream only: io.encoder_hidden_states is left unchanged,
 * as the TeaCache of later diffusers releases (hooks/teacache.py) does for Flux, whose forward
 * discards the encoder stream after the blocks; a host that reads it after a skipped stack gets
 * the stack's input. Hooks: teacache_leader_block_hook, teacache_block_hook. */
typedef struct da_teacache_config {
    uint32_t struct_size;
    double rel_l1_thresh;        /* 0.4 */
    const double *coefficients;  /* NULL = the FLUX fit */
    int64_t num_coefficients;
    int64_t num_inference_steps; /* 28 */
} da_teacache_config;

da_status da_teacache_config_init(da_teacache_config *config, size_t struct_size);
da_status da_model_apply_teacache(da_model model, const da_teacache_config *config, int64_t *hooked);

/* LayerSkipConfig: skip whole blocks (skip_attention and skip_ff), or their self-attention modules
 * (inside da_attention_forward: the output is the input hidden states) and/or feed-forwards (the
 * host asks the block protocol for "<block>.ff", "<block>.ff_context"). dropout < 1 runs the module
 * and drops outputs instead. skip_attention_scores (dropout must be 1): the attention of the selected
 * self-attention modules returns V wherever query and value lengths agree, the rest of the
 * processor runs (diffusers' AttentionScoreSkipFunctionMode; masks are ignored there). */
typedef struct da_layer_skip_config {
    uint32_t struct_size;
    const int64_t *indices;
    int64_t num_indices;
    const char *fqn;                /* NULL = "auto" */
    int32_t skip_attention;         /* 1 */
    int32_t skip_attention_scores;  /* 0 */
    int32_t skip_ff;                /* 1 */
    double dropout;                 /* 1.0 */
    const char *name;               /* hook name; NULL = "layer_skip_hook" */
} da_layer_skip_config;

da_status da_layer_skip_config_init(da_layer_skip_config *config, size_t struct_size);
da_status da_model_apply_layer_skip(da_model model, const da_layer_skip_config *config, int64_t *hooked);

/* CacheMixin: enable_cache(config) with `kind` naming the struct `config` points to; fails with
 * DA_ERR_VALUE when a cache is already enabled. disable_cache removes that cache's hooks (DA_OK
 * when none is enabled). *kind receives DA_CACHE_NONE or the enabled kind. */
#define DA_CACHE_NONE 0
#define DA_CACHE_FASTER 1            /* da_faster_cache_config */
#define DA_CACHE_FIRST_BLOCK 2       /* da_first_block_cache_config */
#define DA_CACHE_MAG 3               /* da_mag_cache_config */
#define DA_CACHE_PYRAMID_ATTENTION 4 /* da_pab_config */
#define DA_CACHE_TAYLORSEER 5        /* da_taylorseer_cache_config */
#define DA_CACHE_TEA 6               /* da_teacache_config */
#define DA_CACHE_SEA 7               /* da_sea_cache_config */
#define DA_CACHE_TEXT_KV 8           /* da_text_kv_cache_config */

da_status da_model_enable_cache(da_model model, int32_t kind, const void *config);
da_status da_model_disable_cache(da_model model);
da_status da_model_enabled_cache(da_model model, int32_t *kind);

/* ---- cache contexts with scheduler fields (diffusers' CacheContext; issue 16) ------------------- */
/* cache_context(name, step_index=..., num_inference_steps=..., timestep=..., sigma=...): the name
 * selects the caches' per-context state as da_model_set_cache_context; the fields are what
 * SeaCache reads. name NULL clears the context (and its fields); entering does not nest. */
typedef struct da_cache_context {
    uint32_t struct_size;
    const char *name;
    int64_t step_index;          /* -1 = None */
    int64_t num_inference_steps; /* -1 = None */
    double timestep;             /* NaN = None */
    double sigma;                /* NaN = None */
} da_cache_context;

da_status da_cache_context_init(da_cache_context *context, size_t struct_size);
da_status da_model_enter_cache_context(da_model model, const da_cache_context *context);

/* ---- SeaCache (diffusers' SeaCacheConfig, hooks/sea_cache.py; docs/caches.md) ------------------ */
/* A residual cache over the whole block stack (da_model_transformer_block_path), gated by the
 * spectral change of the raw latents between scheduler steps. Per transformer call the host enters
 * a cache context with step_index, sigma (in [0, 1]) and num_inference_steps, hands over the raw
 * latents with da_model_set_raw_vision (what diffusers' raw_vision_callback returns), then drives
 * the blocks with the block protocol: the first block decides; on reuse it answers skip with
 * hidden = input + cached residual and encoder = the cached text stream, and the other blocks
 * pass through. Missing fields or latents: the call runs in full (diffusers' fail-open).
 * Validation errors as diffusers' (DA_ERR_VALUE with its messages). Hooks: sea_cache_root,
 * sea_cache_leader_block, sea_cache_block. */
typedef struct da_sea_cache_config {
    uint32_t struct_size;
    double threshold;               /* 0.25 */
    int32_t residual_order;         /* 1 (0 = reuse the last residual) */
    int32_t retention_steps;        /* 1 */
    int32_t cache_end_steps;        /* 1 */
    int32_t max_consecutive_cached; /* 2 (0 = unlimited) */
    double power_exp;               /* 3.0 */
} da_sea_cache_config;

da_status da_sea_cache_config_init(da_sea_cache_config *config, size_t struct_size);
da_status da_model_apply_sea_cache(da_model model, const da_sea_cache_config *config, int64_t *hooked);
/* The raw latents of the next transformer call: `count` float32 (C, T, H, W) tensors (copied),
 * consumed by the first block's decision. count 0 = none. Errors: DA_ERR_STATE (SeaCache not
 * applied), DA_ERR_SHAPE (not 4-D). */
da_status da_model_set_raw_vision(da_model model, const DLTensor *latents, int64_t count);
/* The SEA indicator of one latent (diffusers' _apply_sea_filter): (C, T, H, W) in, (T, H, W, C) out. */
da_status da_sea_filter(const DLTensor *latent, double sigma, double power_exp, DLTensor *out);

/* ---- smoothed energy guidance (diffusers' SmoothedEnergyGuidanceConfig) --------------------------- */
/* The query projections (`query_proj_identifiers`, default to_q) of every self-attention module in
 * the selected blocks get SEG's blur inside the attention step: the first floor(sqrt(S))^2 query
 * tokens as a square grid in row-major order. blur_sigma is passed beside the config, as diffusers
 * does. DA_SEG_DIFFUSERS_0_42_1 reproduces diffusers 0.42.1 (sigma > 9999.9: a Gaussian clamped to
 * the grid, any finite sigma: the mean); DA_SEG_CORRECTED swaps them as SEG intends
 * (docs/deviations.md). Works on Flux too, where diffusers' hook fails. Hook name:
 * smoothed_energy_guidance_hook. */
#define DA_SEG_DIFFUSERS_0_42_1 0
#define DA_SEG_CORRECTED 1
typedef struct da_smoothed_energy_guidance_config {
    uint32_t struct_size;
    const int64_t *indices;
    int64_t num_indices;
    const char *fqn;                               /* NULL = "auto" */
    const char *const *query_proj_identifiers;     /* NULL = {"to_q"} */
    int64_t num_query_proj_identifiers;
    int32_t mapping;                               /* DA_SEG_DIFFUSERS_0_42_1 */
} da_smoothed_energy_guidance_config;

da_status da_smoothed_energy_guidance_config_init(da_smoothed_energy_guidance_config *config, size_t struct_size);
da_status da_model_apply_smoothed_energy_guidance(da_model model, const da_smoothed_energy_guidance_config *config,
                                                  double blur_sigma, int64_t *hooked);
/* Removes every SEG blur of the model (diffusers' remove_hook(name, recurse=True)). */
da_status da_model_remove_smoothed_energy_guidance(da_model model);
/* The blur alone on a (B, S, D) query; `out` has the query's shape. */
da_status da_seg_blur_query(const DLTensor *query, double blur_sigma, int32_t mapping, DLTensor *out);

/* ---- text K/V cache (diffusers' TextKVCacheConfig; docs/caches.md) ------------------------------- */
/* The cross-attention keys and values (to_k / to_v outputs) of UNet2D/3D and PixArt models, whose
 * text states reach every block unchanged, are computed once per prompt and cache context and
 * reused: a layer's output is reused only when its input is bitwise the same as the one it was
 * computed from, so outputs are bitwise those of the uncached run. Joint-attention models (Flux,
 * SD3), whose text stream changes per step, and other classes: DA_ERR_VALUE. Reset (memory) with
 * da_hook_registry_reset_stateful_hooks on the root. Hooks: text_kv_cache_transformer,
 * text_kv_cache_block. */
typedef struct da_text_kv_cache_config {
    uint32_t struct_size;
    int32_t reserved; /* diffusers' config has no fields */
} da_text_kv_cache_config;

da_status da_text_kv_cache_config_init(da_text_kv_cache_config *config, size_t struct_size);
da_status da_model_apply_text_kv_cache(da_model model, const da_text_kv_cache_config *config, int64_t *hooked);
/* Reuses (hits) and computations (misses) of cached projections since the last reset.
 * Errors: DA_ERR_STATE (not applied). */
da_status da_model_text_kv_cache_counts(da_model model, int64_t *hits, int64_t *misses);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DIFFATTN_H */
