// `y = x·Wᵀ + b` on our own micro-kernel (the projections' GEMM). A task owns 64 rows of x and a
// panel of up to `LinearGeometry.panel` output features; it walks K in fixed chunks, packing the
// chunk of its 64 rows transposed (rows in vector lanes, as the attention tiles do) and adding
// 6 weight rows × 64 lanes at a time into a transposed accumulator panel. Each output element is
// then reduced in one fixed order (bias, then K in order), whatever the task split or threads.

public enum LinearGeometry {
    public static let lanes = 64
    public static let panel = 192
    public static let depthChunk = 64
    /// Scratch floats one task needs: the packed chunk, the accumulator panel (plus 6 spare rows for
    /// a partial group) and a widened weight panel.
    public static let scratchFloats = depthChunk * lanes + (panel + 6) * lanes + panel * depthChunk
}

/// Weight storage of a linear layer: float32, or 16-bit (bf16 / fp16) widened chunk by chunk.
public enum LinearWeightFormat: Int, Sendable { case float32 = 0, bfloat16 = 1, float16 = 2 }

/// `st[r][lanes] += Σ_d xt[d][lanes] · w_r[d]` for 6 weight rows (offsets `o`, unit channel stride).
@_transparent
public func linearKernelWide(xt: UnsafePointer<Float>, depth: Int, w: UnsafePointer<Float>,
                             _ o: (Int, Int, Int, Int, Int, Int), st: UnsafeMutablePointer<Float>, _ fused: Bool) {
    let w0 = w + o.0, w1 = w + o.1, w2 = w + o.2, w3 = w + o.3, w4 = w + o.4, w5 = w + o.5
    var a00 = loadLanes(st + 0), a01 = loadLanes(st + 16), a02 = loadLanes(st + 32), a03 = loadLanes(st + 48)
    var a10 = loadLanes(st + 64), a11 = loadLanes(st + 80), a12 = loadLanes(st + 96), a13 = loadLanes(st + 112)
    var a20 = loadLanes(st + 128), a21 = loadLanes(st + 144), a22 = loadLanes(st + 160), a23 = loadLanes(st + 176)
    var a30 = loadLanes(st + 192), a31 = loadLanes(st + 208), a32 = loadLanes(st + 224), a33 = loadLanes(st + 240)
    var a40 = loadLanes(st + 256), a41 = loadLanes(st + 272), a42 = loadLanes(st + 288), a43 = loadLanes(st + 304)
    var a50 = loadLanes(st + 320), a51 = loadLanes(st + 336), a52 = loadLanes(st + 352), a53 = loadLanes(st + 368)
    var q = xt
    for c in 0..<depth {
        let q0 = loadLanes(q + 0), q1 = loadLanes(q + 16), q2 = loadLanes(q + 32), q3 = loadLanes(q + 48)
        let b0 = Float16Lanes(repeating: w0[c])
        a00 = multiplyAdd(a00, q0, b0, fused); a01 = multiplyAdd(a01, q1, b0, fused); a02 = multiplyAdd(a02, q2, b0, fused); a03 = multiplyAdd(a03, q3, b0, fused)
        let b1 = Float16Lanes(repeating: w1[c])
        a10 = multiplyAdd(a10, q0, b1, fused); a11 = multiplyAdd(a11, q1, b1, fused); a12 = multiplyAdd(a12, q2, b1, fused); a13 = multiplyAdd(a13, q3, b1, fused)
        let b2 = Float16Lanes(repeating: w2[c])
        a20 = multiplyAdd(a20, q0, b2, fused); a21 = multiplyAdd(a21, q1, b2, fused); a22 = multiplyAdd(a22, q2, b2, fused); a23 = multiplyAdd(a23, q3, b2, fused)
        let b3 = Float16Lanes(repeating: w3[c])
        a30 = multiplyAdd(a30, q0, b3, fused); a31 = multiplyAdd(a31, q1, b3, fused); a32 = multiplyAdd(a32, q2, b3, fused); a33 = multiplyAdd(a33, q3, b3, fused)
        let b4 = Float16Lanes(repeating: w4[c])
        a40 = multiplyAdd(a40, q0, b4, fused); a41 = multiplyAdd(a41, q1, b4, fused); a42 = multiplyAdd(a42, q2, b4, fused); a43 = multiplyAdd(a43, q3, b4, fused)
        let b5 = Float16Lanes(repeating: w5[c])
        a50 = multiplyAdd(a50, q0, b5, fused); a51 = multiplyAdd(a51, q1, b5, fused); a52 = multiplyAdd(a52, q2, b5, fused); a53 = multiplyAdd(a53, q3, b5, fused)
        q += 64
    }
    storeLanes(st + 0, a00); storeLanes(st + 16, a01); storeLanes(st + 32, a02); storeLanes(st + 48, a03)
    storeLanes(st + 64, a10); storeLanes(st + 80, a11); storeLanes(st + 96, a12); storeLanes(st + 112, a13)
    storeLanes(st + 128, a20); storeLanes(st + 144, a21); storeLanes(st + 160, a22); storeLanes(st + 176, a23)
    storeLanes(st + 192, a30); storeLanes(st + 208, a31); storeLanes(st + 224, a32); storeLanes(st + 240, a33)
    storeLanes(st + 256, a40); storeLanes(st + 272, a41); storeLanes(st + 288, a42); storeLanes(st + 304, a43)
    storeLanes(st + 320, a50); storeLanes(st + 336, a51); storeLanes(st + 352, a52); storeLanes(st + 368, a53)
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
    let wide = spare + 6 * lanes
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
                linearKernelWide(xt: xt, depth: depth, w: w, offs, st: acc + g * lanes, fused)
            } else {   // a partial group works on spare rows, so clamped rows never touch real ones
                for j in 0..<6 { (spare + j * lanes).update(from: acc + min(g + j, last) * lanes, count: lanes) }
                linearKernelWide(xt: xt, depth: depth, w: w, offs, st: spare, fused)
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
