/// Which shared steps a processor kind runs and which of diffusers' quirks it carries — data,
/// not code: every kind of one family runs the same pipeline (spec attention-core §1.2).
struct ProcessorRecipe: Sendable {
    enum Family: Sendable {
        /// Family A: Q from `to_q`, K/V from `to_k`/`to_v` (AttnProcessor and its kin).
        case standard
        /// DiT and joint-attention processors (spec processors-dit), described by a `DiTRecipe`.
        case dit(DiTRecipe)
    }

    /// The attention kernel and the conventions that come with it.
    enum Kernel: Sendable {
        /// `get_attention_scores` · V on batch-flattened heads: `attn.scale`, masks broadcast to
        /// (B·H, L, S), float masks only, fully masked rows give NaN.
        case classic
        /// torch SDPA: scale 1/√D, masks viewed as (B, H, ·, S), boolean masks accepted, fully
        /// masked rows give zeros. Runs the tiled memory-efficient kernel.
        case sdpa
    }

    var family: Family
    var kernel: Kernel
    /// Applies `spatial_norm(x, temb)` when the module has one (SlicedAttnProcessor does not).
    var appliesSpatialNorm = true
    /// Applies `norm_q`/`norm_k` per head (only the SDPA members of family A).
    var appliesQKNorm = false

    static func recipe(for kind: ProcessorKind) -> ProcessorRecipe? {
        switch kind {
        case .attnProcessor: return ProcessorRecipe(family: .standard, kernel: .classic)
        case .attnProcessor2_0: return ProcessorRecipe(family: .standard, kernel: .sdpa, appliesQKNorm: true)
        default: return DiTRecipe.recipe(for: kind).map { ProcessorRecipe(family: .dit($0), kernel: .sdpa) }
        }
    }
}
