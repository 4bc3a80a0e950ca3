// Normalisations over float32 rows and groups. Statistics accumulate in Double: the inputs are
// float32 and torch's reductions are pairwise, so a double sum stays within float rounding of it.

/// LayerNorm over each row of `width` values (biased variance), optional affine, in place allowed.
public func layerNormRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                          eps: Float, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?) {
    for r in 0..<rows {
        let src = x + r * width, dst = y + r * width
        var sum = 0.0
        for j in 0..<width { sum += Double(src[j]) }
        let mean = sum / Double(width)
        var sq = 0.0
        for j in 0..<width { let d = Double(src[j]) - mean; sq += d * d }
        let inv = 1.0 / (sq / Double(width) + Double(eps)).squareRoot()
        for j in 0..<width {
            var v = Float((Double(src[j]) - mean) * inv)
            if let weight { v *= weight[j] }
            if let bias { v += bias[j] }
            dst[j] = v
        }
    }
}

/// RMSNorm: `x / sqrt(mean(x²) + eps)`, then `· weight` when given (diffusers' RMSNorm).
public func rmsNormRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                        eps: Float, weight: UnsafePointer<Float>?) {
    for r in 0..<rows {
        let src = x + r * width, dst = y + r * width
        var sq = 0.0
        for j in 0..<width { sq += Double(src[j]) * Double(src[j]) }
        let meanSquare = Float(sq / Double(width))
        let inv = 1 / (meanSquare + eps).squareRoot()
        for j in 0..<width {
            var v = src[j] * inv
            if let weight { v *= weight[j] }
            dst[j] = v
        }
    }
}

/// L2 normalisation: `x / max(‖x‖₂, eps)` per row.
public func l2NormRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, width: Int, eps: Float) {
    for r in 0..<rows {
        let src = x + r * width, dst = y + r * width
        var sq = 0.0
        for j in 0..<width { sq += Double(src[j]) * Double(src[j]) }
        let norm = max(Float(sq.squareRoot()), eps)
        for j in 0..<width { dst[j] = src[j] / norm }
    }
}

/// GroupNorm of a (batch, tokens, channels) tensor addressed through element strides, so that
/// channels-first images and channels-last token sequences share one kernel. Statistics are per
/// sample and group, over `channels/groups` channels × all tokens; affine per channel.
public func groupNorm(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                      batch: Int, tokens: Int, channels: Int, groups: Int,
                      batchStride: Int, tokenStride: Int, channelStride: Int,
                      eps: Float, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?) {
    let perGroup = channels / groups
    let n = Double(perGroup * tokens)
    for b in 0..<batch {
        for g in 0..<groups {
            let c0 = g * perGroup
            var sum = 0.0
            for c in c0..<(c0 + perGroup) {
                for t in 0..<tokens { sum += Double(x[b * batchStride + t * tokenStride + c * channelStride]) }
            }
            let mean = sum / n
            var sq = 0.0
            for c in c0..<(c0 + perGroup) {
                for t in 0..<tokens {
                    let d = Double(x[b * batchStride + t * tokenStride + c * channelStride]) - mean
                    sq += d * d
                }
            }
            let inv = 1.0 / (sq / n + Double(eps)).squareRoot()
            for c in c0..<(c0 + perGroup) {
                let w = weight?[c] ?? 1, bb = bias?[c] ?? 0
                for t in 0..<tokens {
                    let i = b * batchStride + t * tokenStride + c * channelStride
                    y[i] = Float((Double(x[i]) - mean) * inv) * w + bb
                }
            }
        }
    }
}
