// Row-major kernels that are not attention tiles: the public softmax and the FMA-peak probe.

/// Softmax of each row in place, `exp(x − max) / Σ`, vectorised 16 columns at a time.
/// An all `-inf` row gives NaN, as torch's softmax does.
@_transparent
public func softmaxRowsBody(_ p: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int, fused: Bool) {
    let log2e: Float = 1.442_695_040_888_963_4
    let vectorEnd = columns / 16 * 16
    for r in 0..<rows {
        let row = p + r * stride
        var maxima = Float16Lanes(repeating: -.infinity)
        var c = 0
        while c < vectorEnd { maxima = lanewiseMax(maxima, loadLanes(row + c)); c += 16 }
        var rowMax = maxima.max()
        for c in vectorEnd..<columns where row[c] > rowMax || row[c].isNaN { rowMax = row[c] }
        let subtract = Float16Lanes(repeating: rowMax), scale = Float16Lanes(repeating: log2e)
        var sums = Float16Lanes()
        c = 0
        while c < vectorEnd {
            let e = exp2Lanes((loadLanes(row + c) - subtract) * scale, fused)
            storeLanes(row + c, e); sums += e; c += 16
        }
        var sum = sums.sum()
        for c in vectorEnd..<columns {
            row[c] = exp2Scalar((row[c] - rowMax) * log2e); sum += row[c]
        }
        let inverse = 1 / sum
        c = 0
        while c < vectorEnd { storeLanes(row + c, loadLanes(row + c) * Float16Lanes(repeating: inverse)); c += 16 }
        for c in vectorEnd..<columns { row[c] *= inverse }
    }
}

/// Runs `iterations` × 12 multiply-adds on 16 lanes and returns a value that depends on all of them,
/// so nothing is optimised away. Flops performed: iterations · 12 · 16 · 2. `wide` (AVX-512: 32
/// registers): 12 independent chains of one 16-lane register each. Narrow (AVX2: 16 registers, a
/// SIMD16 takes two): 6 chains of two ymm registers — 12 independent ymm chains, which still cover
/// FMA latency on two pipes, where 12 SIMD16 chains (24 ymm) spilled and measured half the peak.
@_transparent
public func fmaThroughputBody(iterations: Int, seed: Float, fused: Bool, wide: Bool = true) -> Float {
    let x = Float16Lanes(repeating: 0.999_999), y = Float16Lanes(repeating: seed * 1e-7)
    var a0 = Float16Lanes(repeating: seed), a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5
    guard wide else {
        for _ in 0..<iterations {
            a0 = multiplyAdd(y, a0, x, fused); a1 = multiplyAdd(y, a1, x, fused); a2 = multiplyAdd(y, a2, x, fused)
            a3 = multiplyAdd(y, a3, x, fused); a4 = multiplyAdd(y, a4, x, fused); a5 = multiplyAdd(y, a5, x, fused)
            a0 = multiplyAdd(y, a0, x, fused); a1 = multiplyAdd(y, a1, x, fused); a2 = multiplyAdd(y, a2, x, fused)
            a3 = multiplyAdd(y, a3, x, fused); a4 = multiplyAdd(y, a4, x, fused); a5 = multiplyAdd(y, a5, x, fused)
        }
        return (((a0 + a1) + (a2 + a3)) + (a4 + a5)).sum()
    }
    var a6 = a0 + 6, a7 = a0 + 7, a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11
    for _ in 0..<iterations {
        a0 = multiplyAdd(y, a0, x, fused); a1 = multiplyAdd(y, a1, x, fused); a2 = multiplyAdd(y, a2, x, fused)
        a3 = multiplyAdd(y, a3, x, fused); a4 = multiplyAdd(y, a4, x, fused); a5 = multiplyAdd(y, a5, x, fused)
        a6 = multiplyAdd(y, a6, x, fused); a7 = multiplyAdd(y, a7, x, fused); a8 = multiplyAdd(y, a8, x, fused)
        a9 = multiplyAdd(y, a9, x, fused); a10 = multiplyAdd(y, a10, x, fused); a11 = multiplyAdd(y, a11, x, fused)
    }
    let total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11))
    return total.sum()
}
