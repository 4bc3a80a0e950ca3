// `y = x·Wᵀ + b` on our own micro-kernel (the projections' GEMM). A task owns 64 rows of x and a
// panel of up to `LinearGeometry.panel` output features; it walks K in fixed chunks, packing the
// chunk of its 64 rows transposed (rows in vector lanes, as the attention tiles do) and adding
// 6 weight rows × 64 lanes at a time into a transposed accumulator panel. Each output element is
// then reduced in one fixed order (bias, then K in order), whatever the task split or threads.

public enum LinearGeometry {
    public static let lanes = 64
    public static let panel = 384
    public static let depthChunk = 128
    /// Scratch floats one task needs: the packed chunk, the accumulator panel (plus 6 spare rows for
    /// a partial group and 6 for a chunk's partial sums) and a widened weight panel.
    public static let scratchFloats = depthChunk * lanes + (panel + 12) * lanes + panel * depthChunk
}

/// Weight storage of a linear layer: float32, or 16-bit (bf16 / fp16) widened chunk by chunk.
public enum LinearWeightFormat: Int, Sendable { case float32 = 0, bfloat16 = 1, float16 = 2 }

/// `st[r][lanes] += Σ_d xt[d][lanes] · w_r[d]` for 6 weight rows (offsets `o`): the attention score
/// kernel (MicroKernels.swift) into `partial`, then added to the running sums.
@_transparent
public func linearKernelWide(xt: UnsafePointer<Float>, depth: Int, w: UnsafePointer<Float>,
                             _ o: (Int, Int, Int, Int, Int, Int), st: UnsafeMutablePointer<Float>,
                             partial: UnsafeMutablePointer<Float>, _ fused: Bool) {
    scoreKernelWide(qt: xt, depth: depth, key: w, rowOffsets: o, channelStride: 1, st: partial, fused)
    var i = 0
    while i < 6 * 64 {
        storeLanes(st + i, loadLanes(st + i) + loadLanes(partial + i))
        i += 16
    }
}

/// One task of the linear layer: rows `r0 ..< r0+rows` (≤ 64) × outputs `o0 ..< o0+cols` (≤ panel).
/// `weight` is `outFeatures × inFeatures` in `format` (16-bit formats are `UInt16` bit patterns).
@_transparent
public func linearBlockBody(x: UnsafePointer<Float>, rows: Int, inFeatures k: Int,
                            weight: UnsafeRawPointer, format: Int, bias: UnsafePointer<Float>?,
                            outFeatures: Int, o0: Int, cols: Int, y: UnsafeMutablePointer<Float>,
                            scratch: UnsafeMutablePointer<Float>, _ fused: Bool) {
    let lanes = LinearGeometry.lanes, chunk = LinearGeometry.depthChunk
    let xt = scratch, acc = scratch + chunk * lanes, spare = acc + LinearGeometry.panel * lanes
    let partial = spare + 6 * lanes, wide = partial + 6 * lanes
    for o in 0..<cols {
        storeLanesRepeated(acc + o * lanes, bias.map { $0[o0 + o] } ?? 0)
    }
    var c0 = 0
    while c0 < k {
        let depth = min(chunk, k - c0)
        for r in 0..<rows {
            let src = x + r * k + c0
            for d in 0..<depth { xt[d * lanes + r] = src[d] }
        }
        if rows < lanes { for d in 0..<depth { for r in rows..<lanes { xt[d * lanes + r] = 0 } } }
        // Weight rows of this chunk, as float32 with row stride `ws`.
        let w: UnsafePointer<Float>, ws: Int
        if format == 0 {
            w = weight.assumingMemoryBound(to: Float.self) + o0 * k + c0; ws = k
        } else {
            let half = weight.assumingMemoryBound(to: UInt16.self)
            for o in 0..<cols { widenRow(half + (o0 + o) * k + c0, depth, format, into: wide + o * chunk) }
            w = UnsafePointer(wide); ws = chunk
        }
        let last = cols - 1
        var g = 0
        while g < cols {
            let offs = (g * ws, min(g + 1, last) * ws, min(g + 2, last) * ws,
                        min(g + 3, last) * ws, min(g + 4, last) * ws, min(g + 5, last) * ws)
            if g + 6 <= cols {
                linearKernelWide(xt: xt, depth: depth, w: w, offs, st: acc + g * lanes, partial: partial, fused)
            } else {   // a partial group works on spare rows, so clamped rows never touch real ones
                for j in 0..<6 { (spare + j * lanes).update(from: acc + min(g + j, last) * lanes, count: lanes) }
                linearKernelWide(xt: xt, depth: depth, w: w, offs, st: spare, partial: partial, fused)
                for j in 0..<(cols - g) { (acc + (g + j) * lanes).update(from: spare + j * lanes, count: lanes) }
            }
            g += 6
        }
        c0 += depth
    }
    for r in 0..<rows {
        let dst = y + r * outFeatures + o0
        for o in 0..<cols { dst[o] = acc[o * lanes + r] }
    }
}

@_transparent
public func storeLanesRepeated(_ p: UnsafeMutablePointer<Float>, _ value: Float) {
    let v = Float16Lanes(repeating: value)
    storeLanes(p, v); storeLanes(p + 16, v); storeLanes(p + 32, v); storeLanes(p + 48, v)
}

/// Widens `n` 16-bit floats (bf16: the high half of a float32; fp16: IEEE half) to float32.
@_transparent
public func widenRow(_ src: UnsafePointer<UInt16>, _ n: Int, _ format: Int, into dst: UnsafeMutablePointer<Float>) {
    var i = 0
    if format == 1 {
        while i + 16 <= n {
            let h = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<UInt16>.self)
            let bits = SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16
            UnsafeMutableRawPointer(dst + i).storeBytes(of: bits, as: SIMD16<UInt32>.self)
            i += 16
        }
        while i < n { dst[i] = Float(bitPattern: UInt32(src[i]) << 16); i += 1 }
    } else {
        while i < n { dst[i] = Float(Float16(bitPattern: src[i])); i += 1 }
    }
}
