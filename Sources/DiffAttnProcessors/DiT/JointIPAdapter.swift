import DiffAttnKernels
import Glibc
import DiffAttnModule

/// The IP-Adapter inputs a joint processor resolved: the image tokens per adapter (already
/// checked), their scales, and SD3's timestep embedding.
struct JointIPPlan {
    var images: [Tensor]
    var scales: [Float]
    var temb: Tensor?
}

// The IP-Adapter branches of the joint pipeline (attention_processor.py:SD3IPAdapterJointAttnProcessor2_0, transformer_flux.py:FluxIPAdapterAttnProcessor.__call__): the
// processors' own weights live under `processor.` with diffusers' names.
extension Attention {
    /// Checks the IP inputs; nil when the branch does not run (scale 0 or no image tokens for SD3,
    /// no encoder states for Flux, as diffusers skips it there).
    func planJointIP(_ inputs: AttentionInputs, _ r: ProcessorRecipe, batch: Int, headDim: Int, hasEncoder: Bool) throws -> JointIPPlan? {
        let p = processor, name = p.kind.name, inner = derived.innerDim
        switch r.ipAdapter {
        case .none: return nil
        case .sd3:
            guard case .uniform(let s) = p.scale[0], s != 0, let images = inputs.ipHiddenStates else { return nil }
            guard images.count == 1 else {
                throw DiffAttnError.argument("\(name) takes ip_hidden_states as one (batch, tokens, ip_hidden_states_dim) tensor, got \(images.count)")
            }
            let ipWeight = parameters.spec(named: "processor.to_k_ip.weight")!
            let ip = images[0], dim = ipWeight.shape[1]
            guard ip.rank == 3, ip.shape[0] == batch, ip.shape[1] > 0, ip.shape[2] == dim else {
                throw DiffAttnError.shape("ip_hidden_states must be (\(batch), tokens, \(dim)), got \(describe(ip.shape))")
            }
            guard let temb = inputs.temb else {
                throw DiffAttnError.type("silu(): argument 'input' (position 1) must be Tensor, not NoneType: \(name) needs temb with ip_hidden_states")
            }
            let tdim = parameters.spec(named: "processor.norm_ip.linear.weight")!.shape[1]
            guard temb.shape == [batch, tdim] else {
                throw DiffAttnError.shape("temb must be (\(batch), \(tdim)) (timesteps_emb_dim), got \(describe(temb.shape))")
            }
            guard ipWeight.shape[0] == inner else {
                throw DiffAttnError.shape("to_k_ip gives \(ipWeight.shape[0]) channels (hidden_size) but the module's inner_dim is \(inner)")
            }
            let normWidth = parameters.spec(named: "processor.norm_q.weight")!.shape[0]
            guard normWidth == headDim else {
                throw DiffAttnError.shape("the processor's norm_q normalises \(normWidth) values (head_dim) but heads have \(headDim)")
            }
            return JointIPPlan(images: [ip], scales: [s], temb: temb)
        case .flux:
            guard hasEncoder else { return nil }
            guard let images = inputs.ipHiddenStates else {
                throw DiffAttnError.type("'NoneType' object is not iterable: \(name) needs ip_hidden_states with encoder_hidden_states")
            }
            let adapters = min(images.count, p.scale.count)  // zip truncates
            var scales: [Float] = []
            for k in 0..<adapters {
                try checkImageTokens(images[k], adapter: k, batch: batch)
                guard case .uniform(let s) = p.scale[k] else {
                    throw DiffAttnError.type("unsupported operand type(s) for *: 'list' and 'Tensor': \(name) takes one scale per adapter")
                }
                scales.append(s)
            }
            let hidden = parameters.spec(named: "processor.to_k_ip.0.weight")!.shape[0]
            guard hidden == inner, derived.outDim == inner else {
                throw DiffAttnError.shape("\(name) adds (batch, tokens, \(hidden)) image attention to the (batch, tokens, \(derived.outDim)) output; hidden_size, inner_dim and out_dim must agree")
            }
            return JointIPPlan(images: Array(images.prefix(adapters)), scales: scales, temb: nil)
        }
    }

    /// SD3 (attention_processor.py:SD3IPAdapterJointAttnProcessor2_0): `scale · SDPA(norm_q(q), [norm_k(k) ; norm_ip_k(k_ip)], [v ; v_ip])` over the
    /// raw image projections, added to the image stream.
    func addSD3ImageAttention(_ y: inout Tensor, raw: [Tensor], _ ip: JointIPPlan, heads: Int, headDim d: Int) throws {
        let tokens = ip.images[0], temb = ip.temb!
        let (b, n, c) = (tokens.shape[0], tokens.shape[1], tokens.shape[2])
        var activated = temb.reshaped([b, 1, temb.shape[1]])
        for i in 0..<activated.count { let v = activated.storage[i]; activated.storage[i] = v / (1 + expf(-v)) }
        let emb = try project(activated, "processor.norm_ip.linear")  // (B, 1, 2C): shift first, then scale
        var normed = tokens
        normed.storage.withUnsafeMutableBufferPointer { p in
            layerNormRows(p.baseAddress!, p.baseAddress!, rows: b * n, width: c, eps: 1e-6, weight: nil, bias: nil)
        }
        for bi in 0..<b {
            for t in 0..<n {
                for j in 0..<c {
                    let i = (bi * n + t) * c + j
                    normed.storage[i] = normed.storage[i] * (1 + emb.storage[bi * 2 * c + c + j]) + emb.storage[bi * 2 * c + j]
                }
            }
        }
        var ipKey = try project(normed, "processor.to_k_ip")
        let ipValue = try project(normed, "processor.to_v_ip")
        var query = raw[0], key = raw[1]
        rmsNormHeads(&query, "processor.norm_q", headDim: d)
        rmsNormHeads(&key, "processor.norm_k", headDim: d)
        rmsNormHeads(&ipKey, "processor.norm_ip_k", headDim: d)
        let out = attend(query: query, key: concatTokens([key, ipKey]), value: concatTokens([raw[2], ipValue]), heads: heads,
                         mask: nil, kernel: .sdpa)
        addScaled(&y, ip.scales[0], out)
    }

    /// Flux (transformer_flux.py:FluxIPAdapterAttnProcessor.__call__): Σ_i scale_i · attention(query, to_k_ip[i](P_i), to_v_ip[i](P_i)).
    func fluxImageAttention(query: Tensor, _ ip: JointIPPlan, heads: Int) throws -> Tensor {
        var sum = Tensor(shape: query.shape, repeating: 0)
        for (k, tokens) in ip.images.enumerated() {
            addScaled(&sum, ip.scales[k], try imageAttention(query: query, tokens: tokens, adapter: k, heads: heads, kernel: .sdpa))
        }
        return sum
    }

    /// diffusers' `RMSNorm(head_dim, eps=1e-6)` with weight `prefix.weight`, per head.
    private func rmsNormHeads(_ x: inout Tensor, _ prefix: String, headDim d: Int) {
        let w = weight(prefix + ".weight")!
        x.storage.withUnsafeMutableBufferPointer { p in
            w.withUnsafeElements { wp in
                rmsNormRows(p.baseAddress!, p.baseAddress!, rows: p.count / d, width: d, eps: 1e-6, weight: wp.baseAddress!)
            }
        }
    }
}
