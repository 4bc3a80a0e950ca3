import DiffAttnKernels
import DiffAttnModule

// The steps processors compose (docs/design.md: a processor is a composition of these steps, not a copy). Each one
// is written once here; a processor's recipe decides which run.
extension Attention {
    /// `y = layer(x)` for the Linear layer `prefix` over the last axis of `x`.
    func project(_ x: Tensor, _ prefix: String) throws -> Tensor {
        if let memo = projectionMemo { return try memo(prefix, x) { try computeProjection(x, prefix) } }
        return try computeProjection(x, prefix)
    }

    private func computeProjection(_ x: Tensor, _ prefix: String) throws -> Tensor {
        guard let spec = parameters.spec(named: prefix + ".weight") else {
            throw DiffAttnError.state("this Attention has no '\(prefix)' layer, which \(processor.kind.name) needs")
        }
        let inFeatures = spec.shape[1], outFeatures = spec.shape[0]
        guard x.shape.last == inFeatures else {
            throw DiffAttnError.shape("\(prefix) expects inputs with \(inFeatures) features on the last axis, got shape \(describe(x.shape))")
        }
        let rows = x.count / max(inFeatures, 1)
        let bias = weight(prefix + ".bias")
        let narrow = parameters.narrowed[prefix + ".weight"]
        let y = x.withUnsafeElements { xp in
            withOptionalPointer(bias) { bp in
                Tensor(shape: Array(x.shape.dropLast()) + [outFeatures]) { yp in
                    if let lent = parameters.borrowed[prefix + ".weight"] {   // the caller's memory, in place
                        linear(xp.baseAddress!, rows: rows, inFeatures: inFeatures, weight: lent.base,
                               format: lent.format, bias: bp, outFeatures: outFeatures, into: yp)
                    } else if let narrow {   // layerwise casting: 16-bit storage, widened inside the GEMM
                        narrow.bits.withUnsafeBufferPointer { wp in
                            linear(xp.baseAddress!, rows: rows, inFeatures: inFeatures, weight: UnsafeRawPointer(wp.baseAddress!),
                                   format: narrow.format, bias: bp, outFeatures: outFeatures, into: yp)
                        }
                    } else {
                        weight(prefix + ".weight")!.withUnsafeElements { wp in
                            linear(xp.baseAddress!, rows: rows, inFeatures: inFeatures, weight: wp.baseAddress!,
                                   bias: bp, outFeatures: outFeatures, into: yp)
                        }
                    }
                }
            }
        }
        guard let transform = projectionTransforms[prefix] else { return y }
        return try transform(y)
    }

    /// GroupNorm `prefix` on a (B, tokens, C) sequence (channels last) — attention_processor.py:AttnProcessor.__call__ (group_norm).
    func groupNormTokens(_ x: inout Tensor, _ prefix: String, groups: Int, eps: Float) {
        let (b, n, c) = (x.shape[0], x.shape[1], x.shape[2])
        let w = weight(prefix + ".weight")!, bias = weight(prefix + ".bias")!
        x.storage.withUnsafeMutableBufferPointer { p in
            w.withUnsafeElements { wp in
                bias.withUnsafeElements { bp in
                    groupNorm(p.baseAddress!, p.baseAddress!, batch: b, tokens: n, channels: c, groups: groups,
                              batchStride: n * c, tokenStride: c, channelStride: 1, eps: eps,
                              weight: wp.baseAddress!, bias: bp.baseAddress!)
                }
            }
        }
    }

    /// `norm_encoder_hidden_states` (attention_processor.py:Attention.norm_encoder_hidden_states): LayerNorm over channels, or GroupNorm with the
    /// sequence read channels-first.
    public func normEncoderHiddenStates(_ e: Tensor) throws -> Tensor {
        guard config.crossAttentionNorm != .none else {
            throw DiffAttnError.state("self.norm_cross must be defined to call self.norm_encoder_hidden_states")
        }
        let width = parameters.spec(named: "norm_cross.weight")!.shape[0]
        var y = e
        switch config.crossAttentionNorm {
        case .layerNorm:
            guard e.rank >= 1, e.shape.last == width else {
                throw DiffAttnError.shape("norm_cross (LayerNorm) expects \(width) channels on the last axis, got shape \(describe(e.shape))")
            }
            let w = weight("norm_cross.weight")!, b = weight("norm_cross.bias")!
            y.storage.withUnsafeMutableBufferPointer { p in
                w.withUnsafeElements { wp in
                    b.withUnsafeElements { bp in
                        layerNormRows(p.baseAddress!, p.baseAddress!, rows: e.count / max(width, 1), width: width,
                                      eps: 1e-5, weight: wp.baseAddress!, bias: bp.baseAddress!)
                    }
                }
            }
        case .groupNorm:
            guard e.rank == 3, e.shape[2] == width else {
                throw DiffAttnError.shape("norm_cross (GroupNorm) expects (batch, tokens, \(width)) encoder states, got shape \(describe(e.shape))")
            }
            groupNormTokens(&y, "norm_cross", groups: config.crossAttentionNormNumGroups, eps: 1e-5)
        case .none: break
        }
        return y
    }

    /// (B, C, H, W) → (B, H·W, C): token `t = row·W + col` (attention_processor.py:AttnProcessor.__call__ (4-D input)).
    func tokensFromImage(_ x: Tensor) -> Tensor {
        let (b, c) = (x.shape[0], x.shape[1]), n = x.shape[2] * x.shape[3]
        return x.withUnsafeElements { src in
            Tensor(shape: [b, n, c]) { dst in
                for bi in 0..<b { transposePlane(src.baseAddress! + bi * c * n, rows: c, columns: n, into: dst + bi * n * c) }
            }
        }
    }

    /// (B, N, C) → (B, C, N) reshaped to `imageShape` (the inverse of `tokensFromImage`).
    func imageFromTokens(_ x: Tensor, imageShape: [Int]) -> Tensor {
        let (b, n, c) = (x.shape[0], x.shape[1], x.shape[2])
        return x.withUnsafeElements { src in
            Tensor(shape: imageShape) { dst in
                for bi in 0..<b { transposePlane(src.baseAddress! + bi * n * c, rows: n, columns: c, into: dst + bi * c * n) }
            }
        }
    }
}

/// `dst[j][i] = src[i][j]` for a `rows × columns` row-major plane, in 32×32 blocks (cache-friendly).
func transposePlane(_ src: UnsafePointer<Float>, rows: Int, columns: Int, into dst: UnsafeMutablePointer<Float>) {
    let block = 32
    for i0 in stride(from: 0, to: rows, by: block) {
        for j0 in stride(from: 0, to: columns, by: block) {
            for i in i0..<min(i0 + block, rows) {
                for j in j0..<min(j0 + block, columns) { dst[j * rows + i] = src[i * columns + j] }
            }
        }
    }
}

/// torch's `chunk(parts, dim=-1)` for a last axis divisible by `parts`: consecutive equal pieces.
func splitLastAxis(_ x: Tensor, parts: Int) -> [Tensor] {
    let width = x.shape.last!, piece = width / parts, rows = x.count / max(width, 1)
    return (0..<parts).map { p in
        var out = Tensor(shape: Array(x.shape.dropLast()) + [piece], repeating: 0)
        for r in 0..<rows {
            for j in 0..<piece { out.storage[r * piece + j] = x.storage[r * width + p * piece + j] }
        }
        return out
    }
}
