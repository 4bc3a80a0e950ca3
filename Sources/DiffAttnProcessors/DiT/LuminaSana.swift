import Glibc
import DiffAttnKernels
import DiffAttnModule

/// What the Lumina and Sana pipelines resolved while checking their inputs.
struct LinearFamilyPlan {
    var heads: Int, keyValueHeads: Int, headDim: Int
    var mask: KernelMask?
    var scale: Float?
    var outputShapes: [[Int]]
}

// LuminaAttnProcessor2_0 (attention_processor.py:LuminaAttnProcessor2_0.__call__) and the Sana ReLU linear-attention processors (attention_processor.py:SanaLinearAttnProcessor2_0.__call__):
// both normalise queries and keys over the whole projection width, before the head split.
extension Attention {
    func planLumina(_ inputs: AttentionInputs) throws -> LinearFamilyPlan {
        let x = inputs.hiddenStates, name = processor.kind.name
        guard x.rank == 3, x.shape[2] == config.queryDim else { throw DiffAttnError.shape("\(name) expects hidden_states (batch, tokens, \(config.queryDim)), got \(describe(x.shape))") }
        guard let e = inputs.encoderHiddenStates else { throw DiffAttnError.state("\(name) needs encoder_hidden_states ('NoneType' object has no attribute 'shape')") }
        let (b, s) = (x.shape[0], x.shape[1])
        guard e.rank == 3, e.shape[0] == b, e.shape[2] == derived.crossAttentionDim else {
            throw DiffAttnError.shape("encoder_hidden_states must be (\(b), tokens, \(derived.crossAttentionDim)), got \(describe(e.shape))")
        }
        let m = e.shape[1], heads = derived.heads, d = derived.innerDim / heads
        let kvHeads = derived.innerKVDim / max(d, 1)
        guard d > 0, kvHeads * d == derived.innerKVDim, kvHeads <= heads, heads % kvHeads == 0 else {
            throw DiffAttnError.shape("\(name): key width \(derived.innerKVDim) does not split into query-head groups of \(d)")
        }
        try checkFullWidthNorms()
        guard let mask = inputs.attentionMask else { throw DiffAttnError.state("'NoneType' object has no attribute 'bool': \(name) needs attention_mask") }
        guard mask.shape.reduce(1, *) == b * m else {
            throw DiffAttnError.shape("shape '[\(b), 1, 1, \(m)]' is invalid for attention_mask of shape \(describe(mask.shape))")
        }
        var keep = BoolTensor(shape: [b, 1, 1, m], repeating: 0)
        for i in 0..<(b * m) where maskEntryIsSet(mask, i) { keep.storage[i] = 1 }
        if let f = inputs.dit.queryRotaryEmb { _ = try luminaLayout(f, batch: b, tokens: s, headDim: d, "query_rotary_emb") }
        var scale: Float? = nil
        if let f = inputs.dit.keyRotaryEmb {
            _ = try luminaLayout(f, batch: b, tokens: m, headDim: d, "key_rotary_emb")
            if let base = inputs.dit.baseSequenceLength {
                guard base > 1 else { throw DiffAttnError.value("base_sequence_length must be greater than 1, got \(base)") }
                scale = Float((Glibc.log(Double(s)) / Glibc.log(Double(base))).squareRoot() * Double(derived.scale))
            } else {
                scale = derived.scale
            }
        }
        return LinearFamilyPlan(heads: heads, keyValueHeads: kvHeads, headDim: d,
                                mask: KernelMask(mask: .boolean(keep), strides: Strides4(batch: m, head: 0, token: 0, channel: 1)),
                                scale: scale, outputShapes: [[b, s, heads, d]])
    }

    /// Norms applied over the whole projection width must be sized for it.
    private func checkFullWidthNorms() throws {
        for (n, width) in [("norm_q", derived.innerDim), ("norm_k", derived.innerKVDim)] {
            if let w = parameters.spec(named: n + ".weight"), w.shape[0] != width {
                throw DiffAttnError.shape("\(n) normalises \(w.shape[0]) values but the projection is \(width) wide")
            }
        }
    }

    func runLumina(_ inputs: AttentionInputs, _ plan: LinearFamilyPlan) throws -> [Tensor] {
        let x = inputs.hiddenStates, e = inputs.encoderHiddenStates!
        var q = try project(x, "to_q"), k = try project(e, "to_k")
        let v = try project(e, "to_v")
        if config.qkNorm != .none {
            applyQKNorm(&q, "norm_q", headDim: q.shape[2])
            applyQKNorm(&k, "norm_k", headDim: k.shape[2])
        }
        let d = plan.headDim
        if let f = inputs.dit.queryRotaryEmb {
            rotate(&q, heads: plan.heads, headDim: d, tokens: 0..<q.shape[1], cos: f, sin: f,
                   try luminaLayout(f, batch: x.shape[0], tokens: q.shape[1], headDim: d, "query_rotary_emb"))
        }
        if let f = inputs.dit.keyRotaryEmb {
            rotate(&k, heads: plan.keyValueHeads, headDim: d, tokens: 0..<k.shape[1], cos: f, sin: f,
                   try luminaLayout(f, batch: x.shape[0], tokens: k.shape[1], headDim: d, "key_rotary_emb"))
        }
        let y = attend(query: q, key: k, value: v, heads: plan.heads, mask: plan.mask, kernel: .sdpa, scale: plan.scale,
                       keyValueHeads: plan.keyValueHeads)
        return [y.reshaped(plan.outputShapes[0])]
    }

    func planSanaLinear(_ inputs: AttentionInputs, _ r: ProcessorRecipe) throws -> LinearFamilyPlan {
        let x = inputs.hiddenStates, name = processor.kind.name
        guard x.rank == 3, x.shape[2] == config.queryDim else { throw DiffAttnError.shape("\(name) expects hidden_states (batch, tokens, \(config.queryDim)), got \(describe(x.shape))") }
        if r.pagChunks > 0 { _ = try pagChunkRanges(batch: x.shape[0], chunks: r.pagChunks) }
        if let e = r.ignoresEncoder ? nil : inputs.encoderHiddenStates {
            guard e.rank == 3, e.shape[0] == x.shape[0], e.shape[2] == derived.crossAttentionDim else {
                throw DiffAttnError.shape("encoder_hidden_states must be (\(x.shape[0]), tokens, \(derived.crossAttentionDim)), got \(describe(e.shape))")
            }
        } else if derived.crossAttentionDim != config.queryDim {
            throw DiffAttnError.shape("self-attention feeds hidden_states to to_k, which expects \(derived.crossAttentionDim) channels")
        }
        guard derived.innerKVDim == derived.innerDim, hasLayer("to_out.0") else {
            throw DiffAttnError.shape("\(name) needs key/value widths equal to the query width and a to_out layer")
        }
        if r.appliesQKNorm { try checkFullWidthNorms() }
        let heads = derived.heads
        return LinearFamilyPlan(heads: heads, keyValueHeads: heads, headDim: derived.innerDim / heads, mask: nil, scale: nil,
                                outputShapes: [[x.shape[0], x.shape[1], derived.outDim]])
    }

    func runSanaLinear(_ inputs: AttentionInputs, _ r: ProcessorRecipe, _ plan: LinearFamilyPlan) throws -> [Tensor] {
        let x = inputs.hiddenStates
        guard r.pagChunks > 0 else { return [try sanaCore(x, inputs.encoderHiddenStates ?? x, r, plan)] }
        let ranges = try pagChunkRanges(batch: x.shape[0], chunks: r.pagChunks)
        let original = sliceBatch(x, ranges.original)
        return [concatBatch([try sanaCore(original, original, r, plan), try identityAttention(sliceBatch(x, ranges.perturbed))])]
    }

    private func sanaCore(_ x: Tensor, _ e: Tensor, _ r: ProcessorRecipe, _ plan: LinearFamilyPlan) throws -> Tensor {
        var q = try project(x, "to_q"), k = try project(e, "to_k")
        let v = try project(e, "to_v")
        if r.appliesQKNorm && config.qkNorm != .none {
            applyQKNorm(&q, "norm_q", headDim: q.shape[2])
            applyQKNorm(&k, "norm_k", headDim: k.shape[2])
        }
        let (b, n, w) = (q.shape[0], q.shape[1], q.shape[2]), m = k.shape[1], d = plan.headDim
        var out = Tensor(shape: [b, n, w], repeating: 0)
        let tokens = { (len: Int) in Strides4(batch: len * w, head: d, token: w, channel: 1) }
        q.withUnsafeElements { qp in k.withUnsafeElements { kp in
        v.withUnsafeElements { vp in out.storage.withUnsafeMutableBufferPointer { op in
            reluLinearAttention(LinearAttentionProblem(
                batch: b, heads: plan.heads, queryLength: n, keyLength: m, headDim: d, valueDim: d,
                query: SDPAOperand(data: qp.baseAddress!, strides: tokens(n)),
                key: SDPAOperand(data: kp.baseAddress!, strides: tokens(m)),
                value: SDPAOperand(data: vp.baseAddress!, strides: tokens(m)),
                output: op.baseAddress!, outputStrides: tokens(n), eps: 1e-15))
        }}}}
        return try project(out, "to_out.0")
    }
}
