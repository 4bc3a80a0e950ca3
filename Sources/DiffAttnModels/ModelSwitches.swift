import DiffAttnModule
import DiffAttnProcessors

/// The argument of `set_attention_slice` (unets/unet_2d_condition.py:UNet2DConditionModel.set_attention_slice).
public enum SliceRequest: Sendable, Equatable {
    case auto, max, none
    case size(Int)
    case list([Int?])
}

/// The model-level switches (unets/unet_2d_condition.py:UNet2DConditionModel.set_default_attn_processor … UNet2DConditionModel.set_attention_slice), each reading the class's capabilities from
/// `ModelClass` rather than re-coding diffusers' per-class methods.
extension Model {
    private func absent(_ method: String) -> DiffAttnError {
        DiffAttnError.state("'\(modelClass.name)' object has no attribute '\(method)'")
    }

    // MARK: set_default_attn_processor (unets/unet_2d_condition.py:UNet2DConditionModel.set_default_attn_processor)

    public func setDefaultAttnProcessor() throws {
        switch modelClass.defaultRule {
        case .absent: throw absent("set_default_attn_processor")
        case .always(let kind): try setAttnProcessor(ProcessorConfig(kind: kind))
        case .processorSets:
            let current = attnProcessors.map(\.1.kind)
            if current.allSatisfy({ Attention.addedKVKinds.contains($0) }) {
                try setAttnProcessor(ProcessorConfig(kind: .attnAddedKVProcessor))
            } else if current.allSatisfy({ Attention.crossKinds.contains($0) }) {
                try setAttnProcessor(ProcessorConfig(kind: .attnProcessor))
            } else {
                // diffusers prints the repr of the FIRST processor, offending or not.
                throw DiffAttnError.value("Cannot call `set_default_attn_processor` when attention processors are of type <diffusers.models.attention_processor.\(current[0].name) object>")
            }
        }
    }

    // MARK: QKV fusion (unets/unet_2d_condition.py:UNet2DConditionModel.fuse_qkv_projections)

    /// Each module gets the concatenated `to_qkv`/`to_kv`(/`to_added_qkv`) layers the fused
    /// processors read (Attention.fuseProjections). The separate layers stay — every other
    /// processor and unfusing need them — and unfusing drops the fused copies again, so the
    /// weights are held twice only while fused.
    public func fuseQKVProjections() throws {
        if let bad = attnProcessors.first(where: { $0.1.kind.name.contains("Added") }) {
            _ = bad
            throw DiffAttnError.value("`fuse_qkv_projections()` is not supported for models having added KV projections.")
        }
        guard let fused = modelClass.fusedProcessor else {
            // Generic form (Flux): modules fuse themselves; processors are unchanged.
            for (_, node) in attentionNodes where node.attention!.config.moduleClass == .fluxAttention && !node.attention!.fusedProjections {
                try node.attention!.fuseProjections()
            }
            return
        }
        // Deviation (docs/deviations.md): the originals are saved on the first fuse only, so fusing twice
        // and unfusing restores the real originals, not fused processors.
        if originalProcessors == nil { originalProcessors = attnProcessors.map(\.1) }
        for (_, a) in attentionModules { try a.fuseProjections() }
        try setAttnProcessor(ProcessorConfig(kind: fused))
    }

    /// Restores the saved processors. Deviations (unets/unet_2d_condition.py:UNet2DConditionModel.fuse_qkv_projections): safe before any fuse and
    /// idempotent; the fused layers are dropped and `fused_projections` cleared.
    public func unfuseQKVProjections() throws {
        if modelClass.fusedProcessor == nil {
            for (_, node) in attentionNodes where node.attention!.config.moduleClass == .fluxAttention { node.attention!.unfuseProjections() }
            return
        }
        guard let saved = originalProcessors else { return }
        for ((_, a), p) in zip(attentionModules, saved) {
            a.assignProcessor(p)
            a.unfuseProjections()
        }
        originalProcessors = nil
    }

    var attentionNodes: [(String, ModuleNode)] {
        attentionPaths.map { ($0, try! module(at: $0)) }
    }

    // MARK: xformers (models/modeling_utils.py:ModelMixin.set_use_memory_efficient_attention_xformers)

    /// `set_use_memory_efficient_attention_xformers(valid)`. Enabling always fails on a CPU, as
    /// diffusers' availability check does, before anything changes. Disabling resets legacy
    /// modules to their plain processor — including model-specific ones (diffusers' behaviour,
    /// attention_processor.py:Attention.set_use_memory_efficient_attention_xformers, kept so that processor names match); mixin modules (Flux) ignore it.
    public func setUseMemoryEfficientAttentionXformers(_ valid: Bool) throws {
        if valid {
            guard attentionPaths.isEmpty else {
                throw DiffAttnError(.unsupported, "Refer to https://github.com/facebookresearch/xformers for more information on how to install xformers")
            }
            return
        }
        for (_, node) in attentionNodes where node.attention!.config.moduleClass == .attention {
            let a = node.attention!
            let kind = a.processor.kind
            if Attention.customDiffusionKinds.contains(kind) {
                a.assignProcessor(ProcessorConfig(kind: .customDiffusionAttnProcessor2_0))
            } else if Attention.ipAdapterKinds.contains(kind) {
                a.assignProcessor(ProcessorConfig(kind: .ipAdapterAttnProcessor2_0))
            } else {
                a.assignProcessor(a.defaultProcessor)
            }
        }
    }

    // MARK: set_attention_slice (unets/unet_2d_condition.py:UNet2DConditionModel.set_attention_slice)

    public func setAttentionSlice(_ request: SliceRequest) throws {
        guard modelClass.hasAttentionSlice else { throw absent("set_attention_slice") }
        let modules = attentionModules.map(\.1)
        let dims = modules.map(\.derived.sliceableHeadDim)
        let sizes: [Int?]
        switch request {
        case .auto: sizes = dims.map { $0 / 2 }
        case .max: sizes = dims.map { _ in 1 }
        case .none: sizes = dims.map { _ in nil }
        case .size(let s): sizes = dims.map { _ in s }
        case .list(let l): sizes = l
        }
        guard sizes.count == dims.count else {
            throw DiffAttnError.value("You have provided \(sizes.count), but \(modelClass.name) config has \(dims.count) different attention layers. Make sure to match `len(slice_size)` to be \(dims.count).")
        }
        for (s, d) in zip(sizes, dims) {
            if let s, s > d { throw DiffAttnError.value("size \(s) has to be smaller or equal to \(d).") }
        }
        // Deviation (unets/unet_2d_condition.py:UNet2DConditionModel.set_attention_slice, docs/deviations.md): diffusers accepts 0 ("auto" on one-head layers)
        // and fails later with a division by zero; a size below 1 is refused here, before any change.
        for (i, s) in sizes.enumerated() {
            if let s, s < 1 {
                throw DiffAttnError.value("slice size \(s) for attention layer '\(attentionPaths[i])' must be at least 1 (\"auto\" halves the head count, which gives 0 on one-head layers)")
            }
        }
        for (a, s) in zip(modules, sizes) {
            let addedKV = a.config.addedKVProjDim != nil
            if let s {
                a.assignProcessor(ProcessorConfig(kind: addedKV ? .slicedAttnAddedKVProcessor : .slicedAttnProcessor, sliceSize: s))
            } else {
                a.assignProcessor(addedKV ? ProcessorConfig(kind: .attnAddedKVProcessor) : a.defaultProcessor)
            }
        }
    }
}
