/* libFuzzer target: the whole C API driven by a byte stream.
 *
 * Each input is a little program: a sequence of operations (create, destroy, set_processor,
 * update_processor, set/get_weight, forward, forward_alloc, output_shapes, the helpers, the
 * switches, SDPA, SpatialNorm, library-wide calls) on four handle slots, with fuzzed sizes, dtypes,
 * strides, masks, enum values, NULL pointers, and handles that are live, destroyed, of another
 * kind's tag or made up. Sizes are capped so that one input runs in milliseconds.
 *
 * Oracles besides ASan/LSan: no status outside DA_OK...DA_ERR_INTERNAL, never DA_ERR_INTERNAL, a
 * non-empty message with every error, nothing written to caller outputs when forward fails,
 * failed forward_alloc returns no tensors, failed helpers leave *out NULL. */
#include "fuzz_common.h"

#define SLOTS 4

static long n_create, n_create_ok, n_forward, n_forward_ok, n_helper, n_helper_ok;

typedef struct {
    da_attention h[SLOTS];  /* may hold destroyed handles on purpose */
    int live[SLOTS];
    int64_t query_dim[SLOTS], cross_dim[SLOTS];
} state_t;

static const int32_t kinds[] = {
    0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 43,
    100, 101, 102, 103, 104, 105, 110, 111, 112, 113, 114, 115, 116, 117, 118, 120, 121, 130, 131,
    140, 141, 142, 143, 150, 151, 152, 160, 161, 170, 171, 172, 173, 180, 181,
    -1, 8, 9, 99, 1000, INT32_MIN, INT32_MAX,
};
#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))

static int32_t fz_kind(fz_t *f) { return kinds[fz_range(f, NKINDS)]; }

static da_attention pick_handle(fz_t *f, state_t *s, int *slot) {
    uint8_t sel = fz_u8(f);
    *slot = -1;
    if (sel < 200) {
        *slot = sel % SLOTS;
        return s->h[*slot];
    }
    switch (sel % 5) {
    case 0: return NULL;
    case 1: return (da_attention)(uintptr_t)fz_u64(f); /* made up: never dereferenced */
    case 2: /* right tag, fuzzed index/generation */
        return (da_attention)(uintptr_t)(((uint64_t)0xA1 << 56) | ((uint64_t)fz_range(f, 8) << 24) | fz_range(f, 4));
    case 3: /* another kind's tag with a live slot's bits */
        return (da_attention)(uintptr_t)(((uint64_t)0xB2 << 56) | ((uintptr_t)s->h[fz_range(f, SLOTS)] & 0xFFFFFFFFFFFFFFull));
    default: return (da_attention)(uintptr_t)1;
    }
}

static int64_t small_dim(fz_t *f, int max) { return 1 + fz_range(f, max); }

static void op_create(fz_t *f, state_t *s) {
    int slot = fz_range(f, SLOTS);
    if (s->live[slot]) { da_attention_destroy(s->h[slot]); s->live[slot] = 0; }
    da_attention_config c;
    memset(&c, 0xA5, sizeof c);
    size_t size = fz_u8(f) < 240 ? sizeof c : (size_t)fz_range(f, (int)sizeof c + 8);
    da_status st = da_attention_config_init(&c, size);
    fz_check_status(st, "da_attention_config_init");
    if (st != DA_OK) da_attention_config_init(&c, sizeof c);
    c.query_dim = fz_u8(f) < 245 ? small_dim(f, 16) : fz_i64_edgy(f, 16);
    c.heads = fz_u8(f) < 245 ? small_dim(f, 4) : fz_i64_edgy(f, 4);
    c.dim_head = fz_u8(f) < 245 ? small_dim(f, 8) : fz_i64_edgy(f, 8);
    uint8_t opt = fz_u8(f);
    if (opt & 1) c.cross_attention_dim = fz_u8(f) < 245 ? small_dim(f, 12) : fz_i64_edgy(f, 12);
    if (opt & 2) c.kv_heads = fz_u8(f) < 245 ? small_dim(f, 4) : fz_i64_edgy(f, 4);
    if (opt & 4) c.added_kv_proj_dim = fz_u8(f) < 245 ? small_dim(f, 12) : fz_i64_edgy(f, 12);
    if (opt & 8) c.norm_num_groups = fz_u8(f) < 245 ? small_dim(f, 4) : fz_i64_edgy(f, 4);
    if (opt & 16) c.spatial_norm_dim = fz_u8(f) < 245 ? small_dim(f, 6) : fz_i64_edgy(f, 6);
    if (opt & 32) c.out_dim = fz_u8(f) < 245 ? small_dim(f, 16) : fz_i64_edgy(f, 16);
    if (opt & 64) c.out_context_dim = fz_u8(f) < 245 ? small_dim(f, 16) : fz_i64_edgy(f, 16);
    if (opt & 128) c.cross_attention_norm_num_groups = fz_u8(f) < 245 ? small_dim(f, 4) : fz_i64_edgy(f, 4);
    uint8_t fl = fz_u8(f);
    c.bias = fl & 1;
    c.upcast_attention = (fl >> 1) & 1;
    c.upcast_softmax = (fl >> 2) & 1;
    c.out_bias = (fl >> 3) & 1;
    c.scale_qk = ((fl >> 4) & 3) != 0;
    c.residual_connection = (fl >> 6) & 1;
    c.only_cross_attention = fz_u8(f) < 20;
    c.from_deprecated_attn_block = fz_u8(f) < 40;
    c.pre_only = fz_u8(f) < 30;
    c.elementwise_affine = fz_u8(f) < 200;
    c.is_causal = fz_u8(f) < 40;
    c.cross_attention_norm = fz_u8(f) < 180 ? 0 : fz_i32_edgy(f, 3);
    c.qk_norm = fz_u8(f) < 150 ? 0 : fz_i32_edgy(f, 7);
    c.added_proj_bias = fz_u8(f) < 230 ? c.added_proj_bias : fz_i32_edgy(f, 3) - 1;
    c.context_pre_only = fz_u8(f) < 230 ? c.context_pre_only : fz_i32_edgy(f, 3) - 1;
    c.processor = fz_u8(f) < 100 ? 0 : fz_kind(f);
    if (fz_u8(f) >= 240) c.eps = fz_double(f);
    if (fz_u8(f) >= 240) c.rescale_output_factor = fz_double(f);
    if (fz_u8(f) >= 250) c.dropout = fz_double(f);
    if (fz_u8(f) >= 250) c.struct_size = (uint32_t)fz_range(f, (int)sizeof c);
    /* Keep the module small: at most 2^14 weights per projection is plenty. */
    if (c.query_dim > 0 && c.heads > 0 && c.dim_head > 0 && c.heads <= 64 && c.dim_head <= 64 && c.query_dim <= 64)
        ;
    else if (c.query_dim > 64 || c.heads > 64 || c.dim_head > 64) {
        /* absurd values only when the library must reject them (> 2^24 or <= 0) */
        if (c.query_dim > 64 && c.query_dim <= (1 << 24)) c.query_dim = 16;
        if (c.heads > 64 && c.heads <= (1 << 24)) c.heads = 2;
        if (c.dim_head > 64 && c.dim_head <= (1 << 24)) c.dim_head = 8;
    }
    int64_t *opts[] = {&c.cross_attention_dim, &c.kv_heads, &c.added_kv_proj_dim, &c.norm_num_groups, &c.spatial_norm_dim,
                       &c.out_dim, &c.out_context_dim, &c.cross_attention_norm_num_groups};
    for (unsigned i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        /* Values the library may accept must stay small (weights of size^2). Sizes in 65...2^30
         * would make big modules; map them back to small ones. */
        if (*opts[i] > 64 && *opts[i] <= ((int64_t)1 << 30)) *opts[i] = 4;
    }
    da_attention out = (da_attention)(uintptr_t)0x1234;
    da_attention *outp = fz_u8(f) < 250 ? &out : NULL;
    st = da_attention_create(fz_u8(f) < 252 ? &c : NULL, outp);
    fz_check_status(st, "da_attention_create");
    n_create++, n_create_ok += st == DA_OK;
    if (st == DA_OK) {
        s->h[slot] = out;
        s->live[slot] = 1;
        s->query_dim[slot] = c.query_dim;
        s->cross_dim[slot] = c.cross_attention_dim ? c.cross_attention_dim : c.query_dim;
        if (c.added_kv_proj_dim) s->cross_dim[slot] = c.added_kv_proj_dim;
    } else if (outp && out != NULL) {
        fprintf(stderr, "create failed without setting *out = NULL\n");
        abort();
    }
}

static void op_destroy(fz_t *f, state_t *s) {
    int slot;
    da_attention h = pick_handle(f, s, &slot);
    da_attention_destroy(h);
    /* a destroyed handle stays in its slot: later operations use it after destroy */
    if (slot >= 0 && s->h[slot] == h) s->live[slot] = 0;
    else
        for (int i = 0; i < SLOTS; i++)
            if (s->h[i] == h) s->live[i] = 0;
}

static void fill_processor(fz_t *f, da_processor_config *pc, int64_t *tokens, int32_t *counts, double *scales,
                           size_t scale_cap) {
    int32_t kind = fz_kind(f);
    if (da_processor_config_init(pc, sizeof *pc, kind) != DA_OK) da_processor_config_init(pc, sizeof *pc, 1);
    if (fz_bool(f)) pc->kind = fz_kind(f);
    uint8_t sel = fz_u8(f);
    if (sel & 1) pc->slice_size = fz_i64_edgy(f, 8);
    if (sel & 2) pc->hidden_size = fz_u8(f) < 240 ? small_dim(f, 16) : fz_i64_edgy(f, 16);
    if (sel & 4) pc->cross_attention_dim = fz_u8(f) < 240 ? small_dim(f, 12) : fz_i64_edgy(f, 12);
    if (pc->hidden_size > 64 && pc->hidden_size <= ((int64_t)1 << 30)) pc->hidden_size = 16;
    if (pc->cross_attention_dim > 64 && pc->cross_attention_dim <= ((int64_t)1 << 30)) pc->cross_attention_dim = 8;
    if (sel & 8) pc->train_kv = fz_bool(f);
    if (sel & 16) pc->train_q_out = fz_bool(f);
    if (sel & 32) pc->out_bias = fz_bool(f);
    if (sel & 64) pc->dropout = fz_double(f);
    if (sel & 128) {
        /* IP-Adapter lists: the arrays always hold num_ip_adapters entries when non-NULL */
        uint8_t n = fz_u8(f);
        int32_t adapters = n < 230 ? 1 + n % 3 : fz_i32_edgy(f, 4);
        pc->num_ip_adapters = adapters;
        int in_range = adapters >= 1 && adapters <= 4;
        pc->num_tokens = NULL;
        pc->scale_counts = NULL;
        pc->scales = NULL;
        if (in_range && fz_bool(f)) {
            for (int k = 0; k < adapters; k++) tokens[k] = fz_u8(f) < 240 ? 1 + fz_range(f, 4) : fz_i64_edgy(f, 4);
            pc->num_tokens = tokens;
        }
        size_t total = in_range ? (size_t)adapters : 0;
        if (in_range && fz_bool(f)) {
            total = 0;
            for (int k = 0; k < adapters; k++) {
                counts[k] = fz_u8(f) < 240 ? fz_range(f, 4) : fz_i32_edgy(f, 3);
                /* the values array must hold what valid counts describe */
                total += counts[k] > 0 && counts[k] <= 1024 ? (size_t)counts[k] : 1;
            }
            pc->scale_counts = counts;
        }
        if (in_range && total <= scale_cap && fz_bool(f)) {
            for (size_t i = 0; i < total; i++) scales[i] = fz_u8(f) < 200 ? fz_range(f, 5) * 0.5 : fz_double(f);
            pc->scales = scales;
        }
        if (!in_range && (pc->scale_counts || pc->scales || pc->num_tokens)) abort();
    }
    if (fz_u8(f) >= 250) pc->struct_size = (uint32_t)fz_range(f, (int)sizeof *pc);
}

static void op_processor(fz_t *f, state_t *s) {
    int slot;
    da_attention h = pick_handle(f, s, &slot);
    da_processor_config pc;
    int64_t tokens[4];
    int32_t counts[4];
    double scales[4 * 1024];
    fill_processor(f, &pc, tokens, counts, scales, sizeof scales / sizeof scales[0]);
    da_status st;
    switch (fz_range(f, 4)) {
    case 0: case 1:
        st = da_attention_set_processor(h, fz_u8(f) < 250 ? &pc : NULL);
        fz_check_status(st, "da_attention_set_processor");
        break;
    case 2:
        st = da_attention_update_processor(h, fz_u8(f) < 250 ? &pc : NULL);
        fz_check_status(st, "da_attention_update_processor");
        break;
    default: {
        da_processor_config got;
        memset(&got, 0, sizeof got);
        got.struct_size = fz_u8(f) < 240 ? sizeof got : (uint32_t)fz_range(f, (int)sizeof got);
        st = da_attention_get_processor(h, &got);
        fz_check_status(st, "da_attention_get_processor");
        if (st == DA_OK && fz_bool(f)) {
            st = da_attention_update_processor(h, &got);
            fz_check_status(st, "da_attention_update_processor(get_processor)");
        }
        double sc[16];
        int32_t cn[8];
        int64_t nv = -5;
        int64_t cap = fz_u8(f) < 200 ? fz_range(f, 17) : fz_i64_edgy(f, 16);
        int32_t na = fz_u8(f) < 200 ? fz_range(f, 9) : fz_i32_edgy(f, 8);
        /* The arrays hold 16 and 8 entries; larger claimed capacities are the caller's lie, so
         * only pass capacities that are true. */
        if (cap > 16) cap = 16;
        if (na > 8) na = 8;
        st = da_attention_get_ip_adapter_scale(h, fz_bool(f) ? sc : NULL, cap, fz_bool(f) ? cn : NULL, na,
                                               fz_bool(f) ? &nv : NULL);
        fz_check_status(st, "da_attention_get_ip_adapter_scale");
        break;
    }
    }
}

static void op_weight(fz_t *f, state_t *s) {
    int slot;
    da_attention h = pick_handle(f, s, &slot);
    int64_t count = 0;
    da_status st = da_attention_weight_count(h, fz_u8(f) < 252 ? &count : NULL);
    fz_check_status(st, "da_attention_weight_count");
    da_weight_info wi;
    memset(&wi, 0, sizeof wi);
    wi.struct_size = fz_u8(f) < 250 ? sizeof wi : (uint32_t)fz_range(f, (int)sizeof wi);
    int64_t index = fz_u8(f) < 230 ? (count > 0 ? fz_range(f, (int)(count < 256 ? count : 256)) : 0) : fz_i64_edgy(f, 40);
    st = da_attention_weight_info(h, index, fz_u8(f) < 252 ? &wi : NULL);
    fz_check_status(st, "da_attention_weight_info");
    const char *name = "to_q.weight";
    int ndim = 2;
    int64_t shape[DA_MAX_NDIM] = {4, 4};
    if (st == DA_OK) {
        if (wi.ndim < 0 || wi.ndim > DA_MAX_NDIM || wi.name == NULL) {
            fprintf(stderr, "weight_info returned ndim %d name %p\n", wi.ndim, (const void *)wi.name);
            abort();
        }
        name = wi.name;
        ndim = wi.ndim;
        for (int i = 0; i < ndim; i++) shape[i] = wi.shape[i];
    }
    static const char *names[] = {"to_q.weight", "to_k.bias", "", "processor.to_k_ip.0.weight", "to_out.0.weight",
                                  "norm_cross.weight", "to_qkv.weight", "x"};
    char buf[40];
    uint8_t nsel = fz_u8(f);
    if (nsel >= 220) {
        if (nsel < 240) name = names[fz_range(f, 8)];
        else if (nsel < 252) {
            size_t n = (size_t)fz_range(f, 39);
            for (size_t i = 0; i < n; i++) buf[i] = (char)(fz_u8(f) | 1);
            buf[n] = 0;
            name = buf;
        } else name = NULL;
    }
    fz_tensor t;
    DLTensor *dl = fz_tensor_make(f, &t, ndim, shape, FZ_F32, 1);
    if (fz_bool(f)) {
        st = da_attention_set_weight(h, name, fz_u8(f) < 252 ? dl : NULL);
        fz_check_status(st, "da_attention_set_weight");
    } else {
        st = da_attention_get_weight(h, name, fz_u8(f) < 252 ? dl : NULL);
        fz_check_status(st, "da_attention_get_weight");
    }
    fz_tensor_free(&t);
}

/* A mask in one of diffusers' layouts (or a fuzzed one) for batch b, query length l, key length n. */
static DLTensor *make_mask(fz_t *f, fz_tensor *m, int64_t b, int64_t l, int64_t n, int64_t heads) {
    int64_t shape[4];
    int ndim;
    switch (fz_range(f, 7)) {
    case 0: ndim = 2; shape[0] = b; shape[1] = n; break;
    case 1: ndim = 3; shape[0] = b; shape[1] = 1; shape[2] = n; break;
    case 2: ndim = 3; shape[0] = b * heads; shape[1] = l; shape[2] = n; break;
    case 3: ndim = 4; shape[0] = b; shape[1] = 1; shape[2] = 1; shape[3] = n; break;
    case 4: ndim = 4; shape[0] = b; shape[1] = heads; shape[2] = l; shape[3] = n; break;
    case 5: ndim = 1; shape[0] = n; break;
    default:
        ndim = fz_range(f, 5);
        for (int i = 0; i < ndim; i++) shape[i] = fz_small(f, 6);
        break;
    }
    return fz_tensor_make(f, m, ndim, shape, fz_range(f, 3) == 0 ? FZ_BOOL : FZ_F32, 1);
}

static void op_forward(fz_t *f, state_t *s) {
    int slot;
    da_attention h = pick_handle(f, s, &slot);
    int64_t c = slot >= 0 && s->live[slot] ? s->query_dim[slot] : 8;
    int64_t ce = slot >= 0 && s->live[slot] ? s->cross_dim[slot] : 8;
    int64_t b = 1 + fz_range(f, 2), l = fz_range(f, 7) + 1, n = fz_range(f, 6) + 1;
    da_forward_args args;
    da_forward_args_init(&args, sizeof args);
    if (fz_u8(f) >= 252) args.struct_size = (uint32_t)fz_range(f, (int)sizeof args);
    fz_tensor th, te, tm, tt, tip[3], tipm[3], to[DA_MAX_OUTPUTS];
    int nip = 0, nipm = 0, nto = 0, have_e = 0, have_m = 0, have_t = 0;
    uint8_t layout = fz_u8(f);
    int64_t hshape[4];
    int hnd;
    if (layout % 4 == 0) { /* (B, C, H, W) */
        hnd = 4; hshape[0] = b; hshape[1] = c; hshape[2] = 1 + fz_range(f, 3); hshape[3] = 1 + fz_range(f, 3);
        l = hshape[2] * hshape[3];
    } else { hnd = 3; hshape[0] = b; hshape[1] = l; hshape[2] = c; }
    args.hidden_states = fz_u8(f) < 252 ? fz_tensor_make(f, &th, hnd, hshape, FZ_F32, 1) : NULL;
    if (!args.hidden_states) memset(&th, 0, sizeof th);
    uint8_t opt = fz_u8(f);
    if (opt & 1) {
        int64_t es[3] = {b, n, ce};
        args.encoder_hidden_states = fz_tensor_make(f, &te, 3, es, FZ_F32, 1);
        have_e = 1;
    } else n = l;
    if (opt & 2) {
        args.attention_mask = make_mask(f, &tm, b, l, n, 1 + fz_range(f, 4));
        have_m = 1;
    }
    if (opt & 4) {
        int64_t ts[4] = {b, 1 + fz_range(f, 6), 1 + fz_range(f, 3), 1 + fz_range(f, 3)};
        args.temb = fz_tensor_make(f, &tt, 4, ts, FZ_F32, 1);
        have_t = 1;
    }
    DLTensor iparr[3]; /* ip_hidden_states is an array of DLTensor: copies of the headers */
    if (opt & 8) {
        args.ip_hidden_states_given = 1;
        nip = fz_range(f, 4);
        for (int k = 0; k < nip; k++) {
            int64_t is[4] = {b, 1 + fz_range(f, 4), 1 + fz_range(f, 4), ce};
            int four = fz_range(f, 4) == 0;
            if (!four) { is[1] = is[2]; is[2] = ce; }
            iparr[k] = *fz_tensor_make(f, &tip[k], four ? 4 : 3, is, FZ_F32, 1);
            /* the DLTensor copy points at tip[k].shape/strides, which stay alive */
        }
        args.num_ip_hidden_states = fz_u8(f) < 245 ? nip : (fz_bool(f) ? -1 : nip + 1 + (nip == 3 ? -1 : 0));
        if (args.num_ip_hidden_states > nip) args.num_ip_hidden_states = nip; /* never claim more than exist */
        args.ip_hidden_states = nip > 0 || fz_bool(f) ? iparr : NULL;
        if (nip == 0 && fz_bool(f)) args.num_ip_hidden_states = fz_range(f, 2) ? 0 : -7;
    }
    const DLTensor *maskptrs[3] = {NULL, NULL, NULL};
    if (opt & 16) {
        nipm = fz_range(f, 4);
        for (int k = 0; k < nipm; k++) {
            if (fz_range(f, 4) == 0) continue; /* a NULL entry is None */
            int64_t ms[4] = {1, 1 + fz_range(f, 3), 1 + fz_range(f, 4), 1 + fz_range(f, 4)};
            maskptrs[k] = fz_tensor_make(f, &tipm[k], 4, ms, fz_bool(f) ? FZ_BOOL : FZ_F32, 1);
        }
        args.ip_adapter_masks = maskptrs;
        args.num_ip_adapter_masks = fz_u8(f) < 245 ? nipm : -1;
    }
    /* outputs: ask for the shapes, build destinations (maybe wrong), check nothing is written on failure */
    da_output_shapes os;
    memset(&os, 0, sizeof os);
    os.struct_size = fz_u8(f) < 250 ? sizeof os : (uint32_t)fz_range(f, (int)sizeof os);
    da_status st = da_attention_output_shapes(h, fz_u8(f) < 252 ? &args : NULL, &os);
    fz_check_status(st, "da_attention_output_shapes");
    int mode = fz_range(f, 3);
    if (mode < 2) {
        DLTensor outs[DA_MAX_OUTPUTS];
        int count = st == DA_OK ? os.count : 1;
        if (count < 0 || count > DA_MAX_OUTPUTS) { fprintf(stderr, "output_shapes count %d\n", count); abort(); }
        int64_t guess[3] = {b, l, c};
        for (int i = 0; i < count; i++) {
            if (st == DA_OK && (os.ndim[i] < 0 || os.ndim[i] > DA_MAX_NDIM)) abort();
            outs[i] = *fz_tensor_make(f, &to[i], st == DA_OK ? os.ndim[i] : 3, st == DA_OK ? os.shape[i] : guess, FZ_F32,
                                      fz_range(f, 4) == 0);
            fz_fill(&to[i], 12345.0f);
            nto++;
        }
        int32_t num = fz_u8(f) < 245 ? count : fz_i32_edgy(f, 4);
        if (num > count) num = count; /* never claim more destinations than exist */
        st = da_attention_forward(h, fz_u8(f) < 252 ? &args : NULL, fz_u8(f) < 252 ? outs : NULL, num);
        fz_check_status(st, "da_attention_forward");
        n_forward++, n_forward_ok += st == DA_OK;
        if (st != DA_OK)
            for (int i = 0; i < nto; i++)
                if (!fz_untouched(&to[i], 12345.0f)) {
                    fprintf(stderr, "forward failed (%s: %s) but wrote outputs[%d]\n", da_status_name(st), da_last_error(), i);
                    abort();
                }
    } else {
        DLManagedTensor *mo[DA_MAX_OUTPUTS + 1];
        for (int i = 0; i <= DA_MAX_OUTPUTS; i++) mo[i] = (DLManagedTensor *)(uintptr_t)0x99;
        int32_t cap = fz_u8(f) < 240 ? DA_MAX_OUTPUTS : fz_i32_edgy(f, DA_MAX_OUTPUTS);
        if (cap > DA_MAX_OUTPUTS) cap = DA_MAX_OUTPUTS;
        int32_t got = -3;
        st = da_attention_forward_alloc(h, &args, mo, cap, fz_u8(f) < 252 ? &got : NULL);
        fz_check_status(st, "da_attention_forward_alloc");
        n_forward++, n_forward_ok += st == DA_OK;
        if (st == DA_OK) {
            if (got < 1 || got > cap) { fprintf(stderr, "forward_alloc num_outputs %d cap %d\n", got, cap); abort(); }
            for (int i = 0; i < got; i++) da_tensor_free(mo[i]);
        } else {
            for (int i = 0; i < (cap > 0 ? cap : 0); i++)
                if (mo[i] != NULL && mo[i] != (DLManagedTensor *)(uintptr_t)0x99) {
                    fprintf(stderr, "forward_alloc failed but left a tensor in outputs[%d]\n", i);
                    abort();
                }
        }
    }
    if (args.hidden_states) fz_tensor_free(&th);
    if (have_e) fz_tensor_free(&te);
    if (have_m) fz_tensor_free(&tm);
    if (have_t) fz_tensor_free(&tt);
    for (int k = 0; k < nip; k++) fz_tensor_free(&tip[k]);
    for (int k = 0; k < nipm; k++)
        if (maskptrs[k]) fz_tensor_free(&tipm[k]);
    for (int i = 0; i < nto; i++) fz_tensor_free(&to[i]);
}

static void deliver_check(da_status st, DLManagedTensor *m, const char *call) {
    fz_check_status(st, call);
    n_helper++, n_helper_ok += st == DA_OK;
    if (st == DA_OK) {
        if (!m || m->dl_tensor.ndim < 0 || m->dl_tensor.ndim > DA_MAX_NDIM) { fprintf(stderr, "%s: bad result\n", call); abort(); }
        /* touch every element: ASan checks the block really holds them */
        size_t n = 1;
        for (int i = 0; i < m->dl_tensor.ndim; i++) n *= (size_t)m->dl_tensor.shape[i];
        size_t bytes = n * (m->dl_tensor.dtype.bits / 8);
        volatile uint8_t acc = 0;
        for (size_t i = 0; i < bytes; i++) acc ^= ((const uint8_t *)m->dl_tensor.data)[i];
        (void)acc;
        da_tensor_free(m);
    } else if (m != NULL && m != (DLManagedTensor *)(uintptr_t)0x77) {
        /* failure: *out is either left alone (handle rejected first) or NULL, never a tensor */
        fprintf(stderr, "%s failed but *out holds a tensor\n", call);
        abort();
    }
}

static void op_helpers(fz_t *f, state_t *s) {
    int slot;
    da_attention h = pick_handle(f, s, &slot);
    int64_t c = slot >= 0 && s->live[slot] ? s->query_dim[slot] : 8;
    int64_t b = 1 + fz_range(f, 3), l = 1 + fz_range(f, 6), n = 1 + fz_range(f, 6);
    DLManagedTensor *m = (DLManagedTensor *)(uintptr_t)0x77, **outp = fz_u8(f) < 252 ? &m : NULL;
    fz_tensor a, k, mk;
    int have_a = 0, have_k = 0, have_m = 0;
    da_status st;
    switch (fz_range(f, 5)) {
    case 0: {
        DLTensor *mask = fz_u8(f) < 252 ? (have_m = 1, make_mask(f, &mk, b, l, n, 2)) : NULL;
        int64_t target = fz_u8(f) < 230 ? fz_range(f, 12) : fz_i64_edgy(f, 12);
        int64_t batch = fz_u8(f) < 230 ? fz_range(f, 4) : fz_i64_edgy(f, 4);
        /* sizes the library accepts are materialised: keep them small */
        if (target > 64 && target <= (1 << 24)) target = 3;
        if (batch > 8 && batch <= (1 << 24)) batch = 2;
        int32_t out_dim = fz_u8(f) < 230 ? 3 + fz_range(f, 2) : fz_i32_edgy(f, 5);
        st = da_attention_prepare_attention_mask(h, mask, target, batch, out_dim, outp);
        if (outp) deliver_check(st, m, "da_attention_prepare_attention_mask");
        else fz_check_status(st, "da_attention_prepare_attention_mask");
        break;
    }
    case 1: {
        int64_t sh[4] = {b, fz_bool(f) ? l : 1 + fz_range(f, 3), l, c};
        int nd = fz_bool(f) ? 3 : 4;
        if (nd == 3) { sh[1] = l; sh[2] = c; }
        DLTensor *t = fz_u8(f) < 252 ? (have_a = 1, fz_tensor_make(f, &a, nd, sh, FZ_F32, 1)) : NULL;
        int32_t out_dim = fz_u8(f) < 230 ? 3 + fz_range(f, 2) : fz_i32_edgy(f, 5);
        st = da_attention_head_to_batch_dim(h, t, out_dim, outp);
        if (outp) deliver_check(st, m, "da_attention_head_to_batch_dim");
        else fz_check_status(st, "da_attention_head_to_batch_dim");
        break;
    }
    case 2: {
        int64_t sh[3] = {b * (1 + fz_range(f, 4)), l, 1 + fz_range(f, 8)};
        DLTensor *t = fz_u8(f) < 252 ? (have_a = 1, fz_tensor_make(f, &a, 3, sh, FZ_F32, 1)) : NULL;
        st = da_attention_batch_to_head_dim(h, t, outp);
        if (outp) deliver_check(st, m, "da_attention_batch_to_head_dim");
        else fz_check_status(st, "da_attention_batch_to_head_dim");
        break;
    }
    case 3: {
        int64_t d = 1 + fz_range(f, 8);
        int64_t qs[3] = {b, l, d}, ks[3] = {b, n, d};
        DLTensor *q = fz_u8(f) < 252 ? (have_a = 1, fz_tensor_make(f, &a, 3, qs, FZ_F32, 1)) : NULL;
        DLTensor *kk = fz_u8(f) < 252 ? (have_k = 1, fz_tensor_make(f, &k, 3, ks, FZ_F32, 1)) : NULL;
        DLTensor *mask = fz_bool(f) ? (have_m = 1, make_mask(f, &mk, b, l, n, 1)) : NULL;
        st = da_attention_get_attention_scores(h, q, kk, mask, outp);
        if (outp) deliver_check(st, m, "da_attention_get_attention_scores");
        else fz_check_status(st, "da_attention_get_attention_scores");
        break;
    }
    default: {
        int64_t ce = slot >= 0 && s->live[slot] ? s->cross_dim[slot] : 8;
        int64_t es[3] = {b, n, ce};
        DLTensor *e = fz_u8(f) < 252 ? (have_a = 1, fz_tensor_make(f, &a, 3, es, FZ_F32, 1)) : NULL;
        st = da_attention_norm_encoder_hidden_states(h, e, outp);
        if (outp) deliver_check(st, m, "da_attention_norm_encoder_hidden_states");
        else fz_check_status(st, "da_attention_norm_encoder_hidden_states");
        break;
    }
    }
    if (have_a) fz_tensor_free(&a);
    if (have_k) fz_tensor_free(&k);
    if (have_m) fz_tensor_free(&mk);
}

static void op_switches(fz_t *f, state_t *s) {
    int slot;
    da_attention h = pick_handle(f, s, &slot);
    da_status st;
    switch (fz_range(f, 8)) {
    case 0: st = da_attention_set_attention_slice(h, fz_i64_edgy(f, 6)); break;
    case 1: st = da_attention_set_use_memory_efficient_attention_xformers(h, fz_i32_edgy(f, 2)); break;
    case 2: st = da_attention_set_use_npu_flash_attention(h, fz_i32_edgy(f, 2)); break;
    case 3: st = da_attention_set_use_xla_flash_attention(h, fz_i32_edgy(f, 2), fz_i32_edgy(f, 2)); break;
    case 4: st = da_attention_fuse_projections(h, fz_i32_edgy(f, 2)); break;
    case 5: st = da_attention_unfuse_projections(h); break;
    case 6: {
        da_attention_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = fz_u8(f) < 245 ? sizeof info : (uint32_t)fz_range(f, (int)sizeof info);
        st = da_attention_get_info(h, fz_u8(f) < 252 ? &info : NULL);
        break;
    }
    default: {
        da_attention_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.struct_size = fz_u8(f) < 245 ? sizeof cfg : (uint32_t)fz_range(f, (int)sizeof cfg);
        st = da_attention_get_config(h, fz_u8(f) < 252 ? &cfg : NULL);
        if (st == DA_OK && fz_bool(f)) {
            /* round trip: a config read back creates a module again */
            da_attention again = NULL;
            if (cfg.query_dim <= 64 && cfg.heads <= 64 && cfg.dim_head <= 64) {
                da_status st2 = da_attention_create(&cfg, &again);
                fz_check_status(st2, "da_attention_create(get_config)");
                da_attention_destroy(again);
            }
        }
        break;
    }
    }
    fz_check_status(st, "switch/info");
}

static void op_sdpa(fz_t *f) {
    int64_t b = 1 + fz_range(f, 2), hq = 1 + fz_range(f, 4), hk = fz_bool(f) ? hq : 1 + fz_range(f, 2);
    int64_t nq = 1 + fz_range(f, 5), nk = fz_range(f, 6), d = 1 + fz_range(f, 6), dv = 1 + fz_range(f, 6);
    int64_t qs[4] = {b, hq, nq, d}, ks[4] = {b, hk, nk, d}, vs[4] = {b, hk, nk, dv}, os[4] = {b, hq, nq, dv};
    fz_tensor q, k, v, o, m;
    DLTensor *qd = fz_tensor_make(f, &q, 4, qs, FZ_F32, 1), *kd = fz_tensor_make(f, &k, 4, ks, FZ_F32, 1),
             *vd = fz_tensor_make(f, &v, 4, vs, FZ_F32, 1), *od = fz_tensor_make(f, &o, 4, os, FZ_F32, fz_bool(f));
    int have_m = fz_bool(f);
    DLTensor *md = have_m ? make_mask(f, &m, b, nq, nk, hq) : NULL;
    da_sdpa_options opt;
    da_sdpa_options_init(&opt, sizeof opt);
    opt.is_causal = fz_range(f, 4) == 0;
    opt.enable_gqa = fz_bool(f);
    if (fz_range(f, 4) == 0) { opt.has_scale = 1; opt.scale = fz_double(f); }
    opt.algorithm = fz_u8(f) < 240 ? fz_range(f, 3) : fz_i32_edgy(f, 3);
    if (fz_u8(f) >= 250) opt.dropout_p = fz_double(f);
    if (fz_u8(f) >= 250) opt.struct_size = (uint32_t)fz_range(f, (int)sizeof opt);
    fz_fill(&o, 12345.0f);
    da_status st = da_scaled_dot_product_attention(qd, kd, vd, md, fz_u8(f) < 230 ? &opt : NULL, od);
    fz_check_status(st, "da_scaled_dot_product_attention");
    if (st != DA_OK && !fz_untouched(&o, 12345.0f)) {
        fprintf(stderr, "SDPA failed (%s) but wrote out\n", da_last_error());
        abort();
    }
    fz_tensor_free(&q), fz_tensor_free(&k), fz_tensor_free(&v), fz_tensor_free(&o);
    if (have_m) fz_tensor_free(&m);
}

static void op_spatial_norm(fz_t *f) {
    int64_t bsz = 1 + fz_range(f, 2), cch = 32 * (1 + fz_range(f, 2)), hh = 1 + fz_range(f, 3), ww = 1 + fz_range(f, 3);
    int64_t cz = 1 + fz_range(f, 3), zh = 1 + fz_range(f, 3), zw = 1 + fz_range(f, 3);
    if (fz_range(f, 4) == 0) cch = 1 + fz_range(f, 40); /* not a multiple of 32 */
    int64_t fs[4] = {bsz, cch, hh, ww}, zs[4] = {fz_bool(f) ? 1 : bsz, cz, zh, zw}, vec[1] = {cch}, conv[4] = {cch, cz, 1, 1};
    fz_tensor t[8];
    DLTensor *fd = fz_tensor_make(f, &t[0], 4, fs, FZ_F32, 1), *zd = fz_tensor_make(f, &t[1], 4, zs, FZ_F32, 1);
    da_spatial_norm_weights w;
    memset(&w, 0, sizeof w);
    w.struct_size = fz_u8(f) < 245 ? sizeof w : (uint32_t)fz_range(f, (int)sizeof w);
    w.norm_layer_weight = fz_tensor_make(f, &t[2], 1, vec, FZ_F32, 1);
    w.norm_layer_bias = fz_tensor_make(f, &t[3], 1, vec, FZ_F32, 1);
    w.conv_y_weight = fz_tensor_make(f, &t[4], 4, conv, FZ_F32, 1);
    w.conv_y_bias = fz_tensor_make(f, &t[5], 1, vec, FZ_F32, 1);
    w.conv_b_weight = fz_tensor_make(f, &t[6], 4, conv, FZ_F32, 1);
    w.conv_b_bias = fz_u8(f) < 250 ? fz_tensor_make(f, &t[7], 1, vec, FZ_F32, 1) : (memset(&t[7], 0, sizeof t[7]), NULL);
    DLManagedTensor *m = (DLManagedTensor *)(uintptr_t)0x77;
    da_status st = da_spatial_norm(fd, zd, fz_u8(f) < 252 ? &w : NULL, &m);
    deliver_check(st, m, "da_spatial_norm");
    for (int i = 0; i < 8; i++) fz_tensor_free(&t[i]);
}

static void op_library(fz_t *f) {
    char name[48];
    int32_t kind = 0;
    switch (fz_range(f, 7)) {
    case 0: {
        const char *nm = da_processor_name(fz_kind(f));
        if (nm && fz_bool(f)) {
            fz_check_status(da_processor_kind_from_name(nm, &kind), "da_processor_kind_from_name");
        }
        break;
    }
    case 1: {
        size_t n = (size_t)fz_range(f, 47);
        for (size_t i = 0; i < n; i++) name[i] = (char)(fz_u8(f) | 1);
        name[n] = 0;
        fz_check_status(da_processor_kind_from_name(fz_u8(f) < 250 ? name : NULL, fz_u8(f) < 250 ? &kind : NULL),
                        "da_processor_kind_from_name");
        break;
    }
    case 2: (void)da_processor_is_implemented(fz_i32_edgy(f, 200)); (void)da_status_name(fz_i32_edgy(f, 14)); break;
    case 3: fz_check_status(da_check_abi(fz_u32(f) % 3 == 0 ? fz_u32(f) : DA_ABI_VERSION), "da_check_abi"); break;
    case 4: {
        da_processor_config pc;
        fz_check_status(da_processor_config_init(fz_u8(f) < 250 ? &pc : NULL, fz_u8(f) < 240 ? sizeof pc : (size_t)fz_range(f, 200),
                                                 fz_kind(f)), "da_processor_config_init");
        break;
    }
    case 5: {
        da_sdpa_options o;
        da_forward_args a;
        fz_check_status(da_sdpa_options_init(&o, fz_u8(f) < 240 ? sizeof o : (size_t)fz_range(f, 100)), "da_sdpa_options_init");
        fz_check_status(da_forward_args_init(&a, fz_u8(f) < 240 ? sizeof a : (size_t)fz_range(f, 100)), "da_forward_args_init");
        break;
    }
    default: {
        /* threads: 1 or 2 (the machine has 2 cores), or an invalid value */
        int32_t t = fz_u8(f) < 230 ? 1 + fz_range(f, 2) : fz_i32_edgy(f, 2000);
        if (t > 2 && t <= 1024) t = 2;
        fz_check_status(da_set_num_threads(t), "da_set_num_threads");
        break;
    }
    }
}

static void stats(void) {
    fprintf(stderr, "fuzz_capi: creates %ld/%ld ok, forwards %ld/%ld ok, helpers %ld/%ld ok\n", n_create_ok, n_create,
            n_forward_ok, n_forward, n_helper_ok, n_helper);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (getenv("FUZZ_STATS")) atexit(stats);
    da_set_num_threads(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_t f = {data, size, 0};
    state_t s;
    memset(&s, 0, sizeof s);
    int ops = 0;
    while (fz_more(&f) && ops++ < 24) {
        switch (fz_range(&f, 12)) {
        case 0: case 1: op_create(&f, &s); break;
        case 2: op_destroy(&f, &s); break;
        case 3: op_processor(&f, &s); break;
        case 4: op_weight(&f, &s); break;
        case 5: case 6: op_forward(&f, &s); break;
        case 7: op_helpers(&f, &s); break;
        case 8: op_switches(&f, &s); break;
        case 9: op_sdpa(&f); break;
        case 10: op_spatial_norm(&f); break;
        default: op_library(&f); break;
        }
    }
    for (int i = 0; i < SLOTS; i++) da_attention_destroy(s.h[i]); /* live or not: destroy accepts anything */
    da_set_num_threads(1);
    return 0;
}
