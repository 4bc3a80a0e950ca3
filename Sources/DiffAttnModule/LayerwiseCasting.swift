import DiffAttnKernels

/// diffusers' `enable_layerwise_casting(storage_dtype=…, compute_dtype=torch.float32,
/// skip_modules_pattern=…)` for the attention modules: the weights (and biases) of every Linear
/// layer whose name matches no skip pattern are stored as bf16 or fp16 — half the memory — and
/// widened to float32 inside the projection GEMM, chunk by chunk; computation stays float32.
/// Patterns are regular expressions searched in the layer's name (`re.search`), the full dotted
/// path within a model (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`).
public enum LayerwiseCasting {
    /// diffusers' `DEFAULT_SKIP_MODULES_PATTERN`: positional and patch embeddings, every norm, and the
    /// model's outermost `proj_in`/`proj_out`. Norm layers are never cast anyway (only Linear layers are).
    public static let defaultSkipModulesPattern = ["pos_embed", "patch_embed", "norm", "^proj_in$", "^proj_out$"]

    /// Whether narrowing to bf16 uses the CPU's AVX-512 BF16 instructions (else a portable path
    /// giving the same bits). Widening needs no special instruction (a shift for bf16).
    public static var usesBFloat16Instructions: Bool { hasBFloat16Instructions }

    package static func compile(_ patterns: [String]) throws -> [Regex<AnyRegexOutput>] {
        try patterns.map { p in
            do { return try Regex(p) } catch {
                throw DiffAttnError.argument("skip_modules_pattern '\(p)' is not a valid regular expression")
            }
        }
    }
}

extension Attention {
    /// The layer names (weight prefixes) of this module's Linear layers.
    var linearLayers: [String] {
        parameters.specs.compactMap { spec in
            guard spec.name.hasSuffix(".weight"), spec.shape.count == 2 else { return nil }
            return String(spec.name.dropLast(".weight".count))
        }
    }

    /// Stores this module's Linear layers as `storage` (`.float32` undoes the casting); layers whose
    /// name matches a skip pattern are float32. `path` is the module's name within its model,
    /// prefixed to each layer name before matching.
    public func enableLayerwiseCasting(storage: LinearWeightFormat,
                                       skipModulesPattern: [String] = LayerwiseCasting.defaultSkipModulesPattern,
                                       path: String = "") throws {
        let patterns = try LayerwiseCasting.compile(skipModulesPattern)
        try checkWeightsEditable("enable_layerwise_casting")
        var table = parameters
        for layer in linearLayers {
            let name = path.isEmpty ? layer : path + "." + layer
            // A skipped layer is (back) in float32: each call states the whole module's storage.
            let format = patterns.contains(where: { name.contains($0) }) ? .float32 : storage
            table.castStorage(layer + ".weight", to: format)
            if table.contains(layer + ".bias") { table.castStorage(layer + ".bias", to: format) }
        }
        parameters = table
    }

    /// The storage format of each cast weight (layer weight name → format); empty when not cast.
    public var layerwiseCastingFormats: [String: LinearWeightFormat] { parameters.narrowed.mapValues(\.format) }

    /// Bytes the module's weights occupy.
    public var weightBytes: Int {
        parameters.specs.reduce(0) { sum, spec in
            sum + spec.shape.reduce(1, *) * (parameters.narrowed[spec.name] == nil ? 4 : 2)
        }
    }
}
