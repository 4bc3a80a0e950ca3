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
    // Visit a group's elements in memory order (channels innermost for token sequences, tokens
    // innermost for channels-first images): the other order strides through memory.
    let channelsInner = channelStride <= tokenStride
    @inline(__always) func forEachElement(_ b: Int, _ c0: Int, _ body: (Int, Int) -> Void) {
        if channelsInner {
            for t in 0..<tokens {
                let row = b * batchStride + t * tokenStride
                for c in c0..<(c0 + perGroup) { body(row + c * channelStride, c) }
            }
        } else {
            for c in c0..<(c0 + perGroup) {
                let column = b * batchStride + c * channelStride
                for t in 0..<tokens { body(column + t * tokenStride, c) }
            }
        }
    }
    // One task per (sample, group): each is reduced by one thread in a fixed order, so results do
    // not depend on the thread count.
    Parallel.forEach(batch * groups) { task in
        let b = task / groups, c0 = (task % groups) * perGroup
        var sum = 0.0
        forEachElement(b, c0) { i, _ in sum += Double(x[i]) }
        let mean = sum / n
        var sq = 0.0
        forEachElement(b, c0) { i, _ in let d = Double(x[i]) - mean; sq += d * d }
        let inv = 1.0 / (sq / n + Double(eps)).squareRoot()
        forEachElement(b, c0) { i, c in
            y[i] = Float((Double(x[i]) - mean) * inv) * (weight?[c] ?? 1) + (bias?[c] ?? 0)
        }
    }
}
