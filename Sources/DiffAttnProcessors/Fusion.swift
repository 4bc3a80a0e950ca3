import DiffAttnKernels
import DiffAttnModule

// `fuse_projections` (attention_processor.py:Attention.fuse_projections): concatenated copies of the projection
// weights, used by the fused processors. The separate layers stay (every other processor uses
// them), as in diffusers.
extension Attention {
    /// Builds `to_qkv` (self-attention modules) or `to_kv` (cross-attention modules), plus
    /// `to_added_qkv` when all three added projections exist; sets `fused_projections = fuse`
    /// (diffusers builds the layers even for `fuse=False`, docs/quirks.md item 21).
    public func fuseProjections(fuse: Bool = true) throws {
        guard !config.onlyCrossAttention else {
            throw DiffAttnError.state("'NoneType' object has no attribute 'weight': fuse_projections needs to_k/to_v, which this Attention lacks (only_cross_attention=True)")
        }
        try checkWeightsEditable("fuse_projections")
        var table = parameters
        removeFusedLayers(&table)
        let parts = derived.isCrossAttention ? ["to_k", "to_v"] : ["to_q", "to_k", "to_v"]
        concatenate(parts, into: derived.isCrossAttention ? "to_kv" : "to_qkv", bias: config.bias, &table)
        if ["add_q_proj", "add_k_proj", "add_v_proj"].allSatisfy({ table.contains($0 + ".weight") }) {
            concatenate(["add_q_proj", "add_k_proj", "add_v_proj"], into: "to_added_qkv",
                        bias: config.addedProjBias ?? false, &table)
        }
        parameters = table
        fusedProjections = fuse
    }

    /// Drops the fused layers and clears the flag (the AttentionModuleMixin's unfuse).
    public func unfuseProjections() {
        removeFusedLayers(&parameters)
        fusedProjections = false
    }

    private func removeFusedLayers(_ table: inout ParameterTable) {
        for layer in ["to_qkv", "to_kv", "to_added_qkv"] { table.removeAll(withPrefix: layer + ".") }
    }

    private func concatenate(_ parts: [String], into name: String, bias: Bool, _ table: inout ParameterTable) {
        let weights = parts.map { table[$0 + ".weight"]! }
        let inFeatures = weights[0].shape[1], outFeatures = weights.reduce(0) { $0 + $1.shape[0] }
        table.add(name + ".weight", [outFeatures, inFeatures], .zeros)
        try? table.set(name + ".weight", Tensor(shape: [outFeatures, inFeatures], storage: weights.flatMap(\.storage)))
        if bias {
            let biases = parts.map { table[$0 + ".bias"]! }
            table.add(name + ".bias", [outFeatures], .zeros)
            try? table.set(name + ".bias", Tensor(shape: [outFeatures], storage: biases.flatMap(\.storage)))
        }
    }
}
