// The Attention switches (attention_processor.py:Attention.set_attention_slice … Attention.set_use_xla_flash_attention): each installs the processor diffusers would. On this
// library the xFormers, NPU and XLA kinds run its own memory-efficient kernel, so enabling them
// succeeds on any CPU where diffusers needs the hardware.
extension Attention {
    package static let customDiffusionKinds: Set<ProcessorKind> = [
        .customDiffusionAttnProcessor, .customDiffusionAttnProcessor2_0, .customDiffusionXFormersAttnProcessor]
    package static let addedKVKinds: Set<ProcessorKind> = [
        .attnAddedKVProcessor, .attnAddedKVProcessor2_0, .slicedAttnAddedKVProcessor, .xformersAttnAddedKVProcessor]
    package static let ipAdapterKinds: Set<ProcessorKind> = [
        .ipAdapterAttnProcessor, .ipAdapterAttnProcessor2_0, .ipAdapterXFormersAttnProcessor]
    static let jointKinds: Set<ProcessorKind> = [.jointAttnProcessor2_0, .xformersJointAttnProcessor]

    /// `set_attention_slice(slice_size)`; nil is None.
    public func setAttentionSlice(_ sliceSize: Int?) throws {
        if let s = sliceSize {
            guard s <= derived.sliceableHeadDim else {
                throw DiffAttnError.value("slice_size \(s) has to be smaller or equal to \(derived.sliceableHeadDim).")
            }
            guard s >= 1 else { throw DiffAttnError.value("slice_size must be at least 1, got \(s)") }
        }
        let added = config.addedKVProjDim != nil
        switch (sliceSize, added) {
        case (let s?, true): try setProcessor(ProcessorConfig(kind: .slicedAttnAddedKVProcessor, sliceSize: s))
        case (let s?, false): try setProcessor(ProcessorConfig(kind: .slicedAttnProcessor, sliceSize: s))
        case (nil, true): try setProcessor(ProcessorConfig(kind: .attnAddedKVProcessor))
        case (nil, false): try setProcessor(defaultProcessor)
        }
    }

    /// `set_use_memory_efficient_attention_xformers(use)`.
    public func setUseMemoryEfficientAttentionXFormers(_ use: Bool) throws {
        let current = processor.kind
        if Attention.customDiffusionKinds.contains(current) {
            try replaceKeepingWeights(kind: use ? .customDiffusionXFormersAttnProcessor : .customDiffusionAttnProcessor2_0)
        } else if Attention.ipAdapterKinds.contains(current) {
            try replaceKeepingWeights(kind: use ? .ipAdapterXFormersAttnProcessor : .ipAdapterAttnProcessor2_0)
        } else if use && Attention.addedKVKinds.contains(current) {
            try setProcessor(ProcessorConfig(kind: .xformersAttnAddedKVProcessor))
        } else if use && Attention.jointKinds.contains(current) {
            try setProcessor(ProcessorConfig(kind: .xformersJointAttnProcessor))
        } else {
            // Disabling replaces added-KV and joint processors with the standard default (docs/quirks.md item 17).
            try setProcessor(use ? ProcessorConfig(kind: .xformersAttnProcessor) : defaultProcessor)
        }
    }

    /// `set_use_npu_flash_attention(use)`.
    public func setUseNPUFlashAttention(_ use: Bool) throws {
        try setProcessor(use ? ProcessorConfig(kind: .attnProcessorNPU) : defaultProcessor)
    }

    /// `set_use_xla_flash_attention(use, partition_spec, is_flux)`; the partition spec only
    /// matters under XLA SPMD and is not stored.
    public func setUseXLAFlashAttention(_ use: Bool, isFlux: Bool = false) throws {
        guard use else { return try setProcessor(defaultProcessor) }
        try setProcessor(ProcessorConfig(kind: isFlux ? .xlaFluxFlashAttnProcessor2_0 : .xlaFlashAttnProcessor2_0))
    }

    /// Installs `kind` built from the current processor's arguments, carrying its weights over
    /// (diffusers copies them with a strict `load_state_dict`). Custom Diffusion's `out_bias` and
    /// `dropout` are not carried (diffusers passes only four arguments), so a processor built with
    /// `out_bias=False` fails as diffusers' strict load does.
    private func replaceKeepingWeights(kind: ProcessorKind) throws {
        var next = ProcessorConfig(kind: kind)
        let old = processor
        next.trainKV = old.trainKV
        next.trainQOut = old.trainQOut
        next.hiddenSize = old.hiddenSize
        next.crossAttentionDim = old.crossAttentionDim
        next.numTokens = old.numTokens
        next.scale = old.scale
        let saved = parameters.specs.filter { $0.name.hasPrefix("processor.") }.map { ($0, parameters[$0.name]!) }
        var table = parameters
        table.removeAll(withPrefix: "processor.")
        try next.validateConstruction()
        next.registerWeights(in: &table)
        let fresh = table.specs.filter { $0.name.hasPrefix("processor.") }
        guard fresh == saved.map(\.0) else {
            let missing = fresh.map(\.name).filter { n in !saved.contains { $0.0.name == n } }
            let unexpected = saved.map(\.0.name).filter { n in !fresh.contains { $0.name == n } }
            throw DiffAttnError.value("Error(s) in loading state_dict for \(kind.name): missing keys \(missing), unexpected keys \(unexpected)")
        }
        for (spec, value) in saved { try table.set(spec.name, value) }
        parameters = table
        processor = next
    }
}
