import DiffAttnKernels
import DiffAttnModule

/// What the joint pipeline resolved while checking its inputs.
struct JointPlan {
    var heads: Int, headDim: Int
    var fused: Bool
    var mask: KernelMask?
    var ip: JointIPPlan?
    var outputShapes: [[Int]]
}

// SD3 joint (and its fused, xFormers and PAG kin), AuraFlow, Flux and Mochi: image and text
// tokens projected by their own layers and attended as one sequence (attention_processor.py:JointAttnProcessor2_0.__call__, attention_processor.py:AuraFlowAttnProcessor2_0.__call__, transformer_flux.py:FluxAttnProcessor.__call__, transformer_mochi.py:MochiAttnProcessor2_0.__call__).
extension Attention {
    func planJoint(_ inputs: AttentionInputs, _ r: ProcessorRecipe) throws -> JointPlan {
        let x = inputs.hiddenStates, name = processor.kind.name
        guard x.rank == 3, x.shape[2] == config.queryDim else {
            throw DiffAttnError.shape("\(name) expects hidden_states (batch, tokens, \(config.queryDim)), got \(describe(x.shape))")
        }
        let (batch, s) = (x.shape[0], x.shape[1])
        let e = inputs.encoderHiddenStates
        if r.encoderRequired && e == nil {
            throw DiffAttnError.state("\(name) needs encoder_hidden_states ('NoneType' object has no attribute 'shape')")
        }
        if r.addedProjectionsNeedEncoder && e == nil && config.addedKVProjDim != nil {
            throw DiffAttnError.state("'NoneType' object has no attribute 'unflatten': \(name) on a module with added_kv_proj_dim needs encoder_hidden_states")
        }
        let fused = usesFusedProjections(r)
        if fused { try checkFusedLayer("to_qkv") }
        var t = 0
        if let e {
            guard e.rank == 3, e.shape[0] == batch else {
                throw DiffAttnError.shape("encoder_hidden_states must be (\(batch), tokens, channels), got \(describe(e.shape))")
            }
            t = e.shape[1]
            if fused && !hasLayer("to_added_qkv") {
                throw DiffAttnError.state(r.fusion == .moduleFlag ? "'tuple' object has no attribute 'unflatten' (the fused module has no to_added_qkv)"
                                          : "'\(config.moduleClass.name)' object has no attribute 'to_added_qkv'")
            }
            for n in ["add_q_proj", "add_k_proj", "add_v_proj"] where !fused && !hasLayer(n) {
                throw DiffAttnError.state("\(name) needs \(n) for encoder_hidden_states, but the module has none ('NoneType' object is not callable)")
            }
            let added = parameters.spec(named: (fused ? "to_added_qkv" : "add_k_proj") + ".weight")!
            guard e.shape[2] == added.shape[1] else {
                throw DiffAttnError.shape("encoder_hidden_states must have \(added.shape[1]) channels (added_kv_proj_dim), got \(describe(e.shape))")
            }
            if textOutputLayer(r) == nil && needsTextLayer(r) {
                throw DiffAttnError.type("'NoneType' object is not callable: \(name) projects the text with to_add_out, which this module lacks")
            }
        }
        let projects = e != nil || r.projectsWithoutEncoder
        if projects && !hasLayer("to_out.0") { throw DiffAttnError.state("'\(config.moduleClass.name)' object has no attribute 'to_out' (pre_only)") }
        guard derived.innerKVDim == derived.innerDim else {
            throw DiffAttnError.shape("\(name) needs key/value heads equal to query heads")
        }
        let heads = derived.heads
        let headDim = config.moduleClass == .fluxAttention ? config.dimHead : derived.innerDim / heads
        guard heads * headDim == derived.innerDim else {
            throw DiffAttnError.shape("inner_dim \(derived.innerDim) is not divisible into heads of \(headDim)")
        }
        if r.appliesQKNorm {
            for n in ["norm_q", "norm_k", "norm_added_q", "norm_added_k"] {
                if let w = parameters.spec(named: n + ".weight"), w.shape[0] != headDim {
                    throw DiffAttnError.shape("\(n) normalises \(w.shape[0]) values but is applied per head to \(headDim) values")
                }
            }
        }
        let length = s + t
        var mask: KernelMask?
        if let m = inputs.attentionMask {
            switch r.mask {
            case .ignored, .prepared: break
            case .rejected(let message): throw DiffAttnError.value(message)
            case .raw: mask = try kernelMask(m, .xformersUnexpanded, batch: batch, heads: heads, queryLength: length, keyLength: length)
            case .flux:
                let shaped = m.shape.count == 2 ? m.map({ $0.reshaped([m.shape[0], 1, 1, m.shape[1]]) }, { $0.reshaped([m.shape[0], 1, 1, m.shape[1]]) }) : m
                mask = try kernelMask(shaped, .sdpaPrepared4D, batch: batch, heads: heads, queryLength: length, keyLength: length)
            case .selectText:
                guard m.shape == [batch, t] else {
                    throw DiffAttnError.shape("\(name) expects attention_mask (batch, text tokens) = (\(batch), \(t)), got \(describe(m.shape))")
                }
                mask = selectTextMask(m, imageTokens: s)
            }
        } else if case .selectText = r.mask {
            throw DiffAttnError.type("'NoneType' object is not subscriptable: \(name) needs attention_mask")
        }
        try checkJointRotary(inputs.dit, r, batch: batch, imageTokens: s, length: length, heads: heads, headDim: headDim)
        if r.pagChunks > 0 {
            let xs = try pagChunkRanges(batch: batch, chunks: r.pagChunks)
            _ = try pagChunkRanges(batch: e?.shape[0] ?? batch, chunks: r.pagChunks)
            _ = xs
        }
        let ip = try planJointIP(inputs, r, batch: batch, headDim: headDim, hasEncoder: e != nil)
        var shapes = [[batch, s, projects ? derived.outDim : derived.innerDim]]
        if e != nil { shapes.append([batch, t, textOutputLayer(r).map { parameters.spec(named: $0 + ".weight")!.shape[0] } ?? derived.innerDim]) }
        if e != nil && r.ipAdapter == .flux { shapes.append([batch, s, derived.innerDim]) }
        return JointPlan(heads: heads, headDim: headDim, fused: fused, mask: mask, ip: ip, outputShapes: shapes)
    }

    private func needsTextLayer(_ r: ProcessorRecipe) -> Bool {
        switch r.textOut {
        case .addOutUnlessContextPreOnly: return config.contextPreOnly != true
        case .addOut: return true
        case .addOutIfPresent, .sharedOut: return false
        }
    }

    /// The layer the text stream goes through, or nil when it is returned un-projected.
    private func textOutputLayer(_ r: ProcessorRecipe) -> String? {
        switch r.textOut {
        case .addOutUnlessContextPreOnly, .addOut, .addOutIfPresent:
            return needsTextLayer(r) || r.textOut == .addOutIfPresent ? (hasLayer("to_add_out") ? "to_add_out" : nil) : nil
        case .sharedOut: return "to_out.0"
        }
    }

    private func checkJointRotary(_ dit: DiTInputs, _ r: ProcessorRecipe, batch: Int, imageTokens s: Int, length: Int,
                                  heads: Int, headDim: Int) throws {
        guard let pair = dit.rotary else { return }
        switch r.rotary {
        case .interleavedJoint: try checkRotaryPair(pair, [length, headDim], "image_rotary_emb")
        case .mochi: try checkRotaryPair(pair, [s, heads, headDim / 2], "image_rotary_emb")
        default: break
        }
    }

    /// Mochi's token selection as a key mask: image keys always, text key t where mask[b, t] ≠ 0.
    private func selectTextMask(_ m: AttentionMask, imageTokens s: Int) -> KernelMask {
        let (b, t) = (m.shape[0], m.shape[1])
        var keep = BoolTensor(shape: [b, 1, 1, s + t], repeating: 1)
        for bi in 0..<b { for j in 0..<t where !maskEntryIsSet(m, bi * t + j) { keep.storage[bi * (s + t) + s + j] = 0 } }
        return KernelMask(mask: .boolean(keep), strides: Strides4(batch: s + t, head: 0, token: 0, channel: 1))
    }

    func runJoint(_ inputs: AttentionInputs, _ r: ProcessorRecipe, _ plan: JointPlan) throws -> [Tensor] {
        let x = inputs.hiddenStates, e = inputs.encoderHiddenStates
        guard r.pagChunks > 0 else { return try jointCore(x, e, inputs, r, plan, mask: plan.mask) }
        let xr = try pagChunkRanges(batch: x.shape[0], chunks: r.pagChunks)
        let er = try pagChunkRanges(batch: e!.shape[0], chunks: r.pagChunks)
        let original = try jointCore(sliceBatch(x, xr.original), sliceBatch(e!, er.original), inputs, r, plan, mask: nil)
        let s = x.shape[1], l = s + e!.shape[1]
        // attention_processor.py:PAGJointAttnProcessor2_0.__call__: each perturbed image query sees only itself among image keys, plus all text keys.
        var identity = Tensor(shape: [1, 1, l, l], repeating: 0)
        for i in 0..<s { for j in 0..<s where i != j { identity.storage[i * l + j] = -.infinity } }
        let perturbed = try jointCore(sliceBatch(x, xr.perturbed), sliceBatch(e!, er.perturbed), inputs, r, plan,
                                      mask: KernelMask(mask: .additive(identity), strides: Strides4(batch: 0, head: 0, token: l, channel: 1)))
        return zip(original, perturbed).map { concatBatch([$0, $1]) }
    }

    private func jointCore(_ x: Tensor, _ e: Tensor?, _ inputs: AttentionInputs, _ r: ProcessorRecipe, _ plan: JointPlan,
                           mask: KernelMask?) throws -> [Tensor] {
        let (h, d) = (plan.heads, plan.headDim)
        var image = try projectParts(x, fused: plan.fused, separate: ["to_q", "to_k", "to_v"], fusedName: "to_qkv")
        let raw = r.ipAdapter == .sd3 ? image : []  // SD3's IP branch normalises the raw projections with its own norms
        if r.appliesQKNorm {
            try normHeads(&image[0], "norm_q", headDim: d)
            try normHeads(&image[1], "norm_k", headDim: d)
        }
        var parts = image.map { [$0] }
        let s = x.shape[1], t = e?.shape[1] ?? 0
        if let e {
            var text = try projectParts(e, fused: plan.fused, separate: ["add_q_proj", "add_k_proj", "add_v_proj"],
                                        fusedName: "to_added_qkv")
            if r.appliesQKNorm {
                try normHeads(&text[0], "norm_added_q", headDim: d)
                try normHeads(&text[1], "norm_added_k", headDim: d)
            }
            for i in 0..<3 { parts[i] = r.order == .imageFirst ? [image[i], text[i]] : [text[i], image[i]] }
        }
        var q = concatTokens(parts[0]), k = concatTokens(parts[1])
        let v = concatTokens(parts[2])
        let imageRange = r.order == .imageFirst || e == nil ? 0..<s : t..<(t + s)
        if let pair = inputs.dit.rotary {
            let spec: RotaryLayoutSpec?
            switch r.rotary {
            case .interleavedJoint: spec = RotaryLayoutSpec(rule: .interleaved, width: d, rowStride: d)
            case .mochi: spec = RotaryLayoutSpec(rule: .pairAngles, width: d, rowStride: h * d / 2, headStride: d / 2)
            default: spec = nil
            }
            if let spec {
                let range = r.rotary == .mochi ? imageRange : 0..<q.shape[1]
                rotate(&q, heads: h, headDim: d, tokens: range, cos: pair.cos, sin: pair.sin, spec)
                rotate(&k, heads: h, headDim: d, tokens: range, cos: pair.cos, sin: pair.sin, spec)
            }
        }
        let y = attend(query: q, key: k, value: v, heads: h, mask: mask, kernel: r.kernel)
        var imageY = e == nil ? y : sliceTokens(y, imageRange)
        if r.ipAdapter == .sd3, let ip = plan.ip { try addSD3ImageAttention(&imageY, raw: raw, ip, heads: h, headDim: d) }
        guard e != nil else { return [r.projectsWithoutEncoder ? try project(imageY, "to_out.0") : imageY] }
        let imageOut = try project(imageY, "to_out.0")
        var text = sliceTokens(y, r.order == .imageFirst ? s..<(s + t) : 0..<t)
        if case .selectText = r.mask, let m = inputs.attentionMask { text = compactSelected(text, m, batchOffset: 0) }
        if let layer = textOutputLayer(r) { text = try project(text, layer) }
        guard r.ipAdapter == .flux, let ip = plan.ip else { return [imageOut, text] }
        return [imageOut, text, try fluxImageAttention(query: image[0], ip, heads: h)]
    }

    /// Mochi (transformer_mochi.py:MochiAttnProcessor2_0.__call__): row r of sample b is the r-th selected text token's output; the rest are zero.
    private func compactSelected(_ y: Tensor, _ m: AttentionMask, batchOffset: Int) -> Tensor {
        let (b, t, w) = (y.shape[0], y.shape[1], y.shape[2])
        var out = Tensor(shape: y.shape, repeating: 0)
        for bi in 0..<b {
            var row = 0
            for j in 0..<t where maskEntryIsSet(m, (bi + batchOffset) * t + j) {
                for c in 0..<w { out.storage[(bi * t + row) * w + c] = y.storage[(bi * t + j) * w + c] }
                row += 1
            }
        }
        return out
    }
}

/// Whether entry `i` of a mask is non-zero (true).
func maskEntryIsSet(_ m: AttentionMask, _ i: Int) -> Bool {
    switch m {
    case .additive(let t): return t.storage[i] != 0
    case .boolean(let t): return t.storage[i] != 0
    }
}
