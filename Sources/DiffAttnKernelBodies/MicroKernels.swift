// Register-tiled micro-kernels with query rows in vector lanes (the tile layout is described in
// AttentionTile.swift). Scores: key scalars broadcast against packed query columns, so any head
// dimension works without a remainder path. Output: value scalars broadcast against probability
// columns. Wide = 4 vectors of lanes (AVX-512: 24 zmm accumulators); narrow = 1 vector (AVX2 and
// baseline, which split each SIMD16 into 2 or 4 registers and would spill the wide tile).

/// Scores for 6 keys × 64 query lanes: `st[r][lanes] = Σ_d qt[d][lanes] · k_r[d]`.
/// `qt` is the packed, transposed query tile (row stride 64 floats); `key` points at key row 0,
/// `rowOffsets` gives each key row's offset (clamped to valid rows by the caller).
@_transparent
public func scoreKernelWide(qt: UnsafePointer<Float>, depth: Int, key: UnsafePointer<Float>,
    rowOffsets o: (Int, Int, Int, Int, Int, Int), channelStride kc: Int,
    st: UnsafeMutablePointer<Float>, _ fused: Bool) {
    let k0 = key + o.0
    let k1 = key + o.1
    let k2 = key + o.2
    let k3 = key + o.3
    let k4 = key + o.4
    let k5 = key + o.5
    var a00 = Float16Lanes(); var a01 = Float16Lanes(); var a02 = Float16Lanes(); var a03 = Float16Lanes();
    var a10 = Float16Lanes(); var a11 = Float16Lanes(); var a12 = Float16Lanes(); var a13 = Float16Lanes();
    var a20 = Float16Lanes(); var a21 = Float16Lanes(); var a22 = Float16Lanes(); var a23 = Float16Lanes();
    var a30 = Float16Lanes(); var a31 = Float16Lanes(); var a32 = Float16Lanes(); var a33 = Float16Lanes();
    var a40 = Float16Lanes(); var a41 = Float16Lanes(); var a42 = Float16Lanes(); var a43 = Float16Lanes();
    var a50 = Float16Lanes(); var a51 = Float16Lanes(); var a52 = Float16Lanes(); var a53 = Float16Lanes();
    var q = qt, c = 0
    for _ in 0..<depth {
        let q0 = loadLanes(q + 0); let q1 = loadLanes(q + 16); let q2 = loadLanes(q + 32); let q3 = loadLanes(q + 48)
        let b0 = Float16Lanes(repeating: k0[c])
        a00 = multiplyAdd(a00, q0, b0, fused); a01 = multiplyAdd(a01, q1, b0, fused); a02 = multiplyAdd(a02, q2, b0, fused); a03 = multiplyAdd(a03, q3, b0, fused)
        let b1 = Float16Lanes(repeating: k1[c])
        a10 = multiplyAdd(a10, q0, b1, fused); a11 = multiplyAdd(a11, q1, b1, fused); a12 = multiplyAdd(a12, q2, b1, fused); a13 = multiplyAdd(a13, q3, b1, fused)
        let b2 = Float16Lanes(repeating: k2[c])
        a20 = multiplyAdd(a20, q0, b2, fused); a21 = multiplyAdd(a21, q1, b2, fused); a22 = multiplyAdd(a22, q2, b2, fused); a23 = multiplyAdd(a23, q3, b2, fused)
        let b3 = Float16Lanes(repeating: k3[c])
        a30 = multiplyAdd(a30, q0, b3, fused); a31 = multiplyAdd(a31, q1, b3, fused); a32 = multiplyAdd(a32, q2, b3, fused); a33 = multiplyAdd(a33, q3, b3, fused)
        let b4 = Float16Lanes(repeating: k4[c])
        a40 = multiplyAdd(a40, q0, b4, fused); a41 = multiplyAdd(a41, q1, b4, fused); a42 = multiplyAdd(a42, q2, b4, fused); a43 = multiplyAdd(a43, q3, b4, fused)
        let b5 = Float16Lanes(repeating: k5[c])
        a50 = multiplyAdd(a50, q0, b5, fused); a51 = multiplyAdd(a51, q1, b5, fused); a52 = multiplyAdd(a52, q2, b5, fused); a53 = multiplyAdd(a53, q3, b5, fused)
        q += 64; c += kc
    }
    storeLanes(st + 0, a00); storeLanes(st + 16, a01); storeLanes(st + 32, a02); storeLanes(st + 48, a03)
    storeLanes(st + 64, a10); storeLanes(st + 80, a11); storeLanes(st + 96, a12); storeLanes(st + 112, a13)
    storeLanes(st + 128, a20); storeLanes(st + 144, a21); storeLanes(st + 160, a22); storeLanes(st + 176, a23)
    storeLanes(st + 192, a30); storeLanes(st + 208, a31); storeLanes(st + 224, a32); storeLanes(st + 240, a33)
    storeLanes(st + 256, a40); storeLanes(st + 272, a41); storeLanes(st + 288, a42); storeLanes(st + 304, a43)
    storeLanes(st + 320, a50); storeLanes(st + 336, a51); storeLanes(st + 352, a52); storeLanes(st + 368, a53)
}

/// Scores for 6 keys × 16 query lanes: `st[r][lanes] = Σ_d qt[d][lanes] · k_r[d]`.
/// `qt` is the packed, transposed query tile (row stride 64 floats); `key` points at key row 0,
/// `rowOffsets` gives each key row's offset (clamped to valid rows by the caller).
@_transparent
public func scoreKernelNarrow(qt: UnsafePointer<Float>, depth: Int, key: UnsafePointer<Float>,
    rowOffsets o: (Int, Int, Int, Int, Int, Int), channelStride kc: Int,
    st: UnsafeMutablePointer<Float>, _ fused: Bool) {
    let k0 = key + o.0
    let k1 = key + o.1
    let k2 = key + o.2
    let k3 = key + o.3
    let k4 = key + o.4
    let k5 = key + o.5
    var a00 = Float16Lanes();
    var a10 = Float16Lanes();
    var a20 = Float16Lanes();
    var a30 = Float16Lanes();
    var a40 = Float16Lanes();
    var a50 = Float16Lanes();
    var q = qt, c = 0
    for _ in 0..<depth {
        let q0 = loadLanes(q + 0)
        let b0 = Float16Lanes(repeating: k0[c])
        a00 = multiplyAdd(a00, q0, b0, fused)
        let b1 = Float16Lanes(repeating: k1[c])
        a10 = multiplyAdd(a10, q0, b1, fused)
        let b2 = Float16Lanes(repeating: k2[c])
        a20 = multiplyAdd(a20, q0, b2, fused)
        let b3 = Float16Lanes(repeating: k3[c])
        a30 = multiplyAdd(a30, q0, b3, fused)
        let b4 = Float16Lanes(repeating: k4[c])
        a40 = multiplyAdd(a40, q0, b4, fused)
        let b5 = Float16Lanes(repeating: k5[c])
        a50 = multiplyAdd(a50, q0, b5, fused)
        q += 64; c += kc
    }
    storeLanes(st + 0, a00)
    storeLanes(st + 64, a10)
    storeLanes(st + 128, a20)
    storeLanes(st + 192, a30)
    storeLanes(st + 256, a40)
    storeLanes(st + 320, a50)
}

/// Output accumulation for 4 value channels × 64 query lanes over `count` keys:
/// `ot[r][lanes] = ot[r][lanes]·alpha[lanes] + Σ_j pt[j][lanes] · v[j][c_r]`, `ot`/`pt` rows 64 floats apart.
/// `channelOffsets` are the value channel offsets of the 4 rows (clamped by the caller).
@_transparent
public func valueKernelWide(ot: UnsafeMutablePointer<Float>, otRows: (Int, Int, Int, Int), alpha: UnsafePointer<Float>,
    pt: UnsafePointer<Float>, count: Int, value: UnsafePointer<Float>, channelOffsets co: (Int, Int, Int, Int),
    tokenStride vs: Int, _ fused: Bool) {
    let al0 = loadLanes(alpha + 0); let al1 = loadLanes(alpha + 16); let al2 = loadLanes(alpha + 32); let al3 = loadLanes(alpha + 48)
    var a00 = loadLanes(ot + otRows.0 * 64 + 0) * al0; var a01 = loadLanes(ot + otRows.0 * 64 + 16) * al1; var a02 = loadLanes(ot + otRows.0 * 64 + 32) * al2; var a03 = loadLanes(ot + otRows.0 * 64 + 48) * al3;
    var a10 = loadLanes(ot + otRows.1 * 64 + 0) * al0; var a11 = loadLanes(ot + otRows.1 * 64 + 16) * al1; var a12 = loadLanes(ot + otRows.1 * 64 + 32) * al2; var a13 = loadLanes(ot + otRows.1 * 64 + 48) * al3;
    var a20 = loadLanes(ot + otRows.2 * 64 + 0) * al0; var a21 = loadLanes(ot + otRows.2 * 64 + 16) * al1; var a22 = loadLanes(ot + otRows.2 * 64 + 32) * al2; var a23 = loadLanes(ot + otRows.2 * 64 + 48) * al3;
    var a30 = loadLanes(ot + otRows.3 * 64 + 0) * al0; var a31 = loadLanes(ot + otRows.3 * 64 + 16) * al1; var a32 = loadLanes(ot + otRows.3 * 64 + 32) * al2; var a33 = loadLanes(ot + otRows.3 * 64 + 48) * al3;
    var p = pt, v = value
    for _ in 0..<count {
        let p0 = loadLanes(p + 0); let p1 = loadLanes(p + 16); let p2 = loadLanes(p + 32); let p3 = loadLanes(p + 48)
        let b0 = Float16Lanes(repeating: v[co.0])
        a00 = multiplyAdd(a00, p0, b0, fused); a01 = multiplyAdd(a01, p1, b0, fused); a02 = multiplyAdd(a02, p2, b0, fused); a03 = multiplyAdd(a03, p3, b0, fused)
        let b1 = Float16Lanes(repeating: v[co.1])
        a10 = multiplyAdd(a10, p0, b1, fused); a11 = multiplyAdd(a11, p1, b1, fused); a12 = multiplyAdd(a12, p2, b1, fused); a13 = multiplyAdd(a13, p3, b1, fused)
        let b2 = Float16Lanes(repeating: v[co.2])
        a20 = multiplyAdd(a20, p0, b2, fused); a21 = multiplyAdd(a21, p1, b2, fused); a22 = multiplyAdd(a22, p2, b2, fused); a23 = multiplyAdd(a23, p3, b2, fused)
        let b3 = Float16Lanes(repeating: v[co.3])
        a30 = multiplyAdd(a30, p0, b3, fused); a31 = multiplyAdd(a31, p1, b3, fused); a32 = multiplyAdd(a32, p2, b3, fused); a33 = multiplyAdd(a33, p3, b3, fused)
        p += 64; v += vs
    }
    storeLanes(ot + otRows.0 * 64 + 0, a00); storeLanes(ot + otRows.0 * 64 + 16, a01); storeLanes(ot + otRows.0 * 64 + 32, a02); storeLanes(ot + otRows.0 * 64 + 48, a03)
    storeLanes(ot + otRows.1 * 64 + 0, a10); storeLanes(ot + otRows.1 * 64 + 16, a11); storeLanes(ot + otRows.1 * 64 + 32, a12); storeLanes(ot + otRows.1 * 64 + 48, a13)
    storeLanes(ot + otRows.2 * 64 + 0, a20); storeLanes(ot + otRows.2 * 64 + 16, a21); storeLanes(ot + otRows.2 * 64 + 32, a22); storeLanes(ot + otRows.2 * 64 + 48, a23)
    storeLanes(ot + otRows.3 * 64 + 0, a30); storeLanes(ot + otRows.3 * 64 + 16, a31); storeLanes(ot + otRows.3 * 64 + 32, a32); storeLanes(ot + otRows.3 * 64 + 48, a33)
}

/// Output accumulation for 4 value channels × 16 query lanes over `count` keys:
/// `ot[r][lanes] = ot[r][lanes]·alpha[lanes] + Σ_j pt[j][lanes] · v[j][c_r]`, `ot`/`pt` rows 64 floats apart.
/// `channelOffsets` are the value channel offsets of the 4 rows (clamped by the caller).
@_transparent
public func valueKernelNarrow(ot: UnsafeMutablePointer<Float>, otRows: (Int, Int, Int, Int), alpha: UnsafePointer<Float>,
    pt: UnsafePointer<Float>, count: Int, value: UnsafePointer<Float>, channelOffsets co: (Int, Int, Int, Int),
    tokenStride vs: Int, _ fused: Bool) {
    let al0 = loadLanes(alpha + 0)
    var a00 = loadLanes(ot + otRows.0 * 64 + 0) * al0;
    var a10 = loadLanes(ot + otRows.1 * 64 + 0) * al0;
    var a20 = loadLanes(ot + otRows.2 * 64 + 0) * al0;
    var a30 = loadLanes(ot + otRows.3 * 64 + 0) * al0;
    var p = pt, v = value
    for _ in 0..<count {
        let p0 = loadLanes(p + 0)
        let b0 = Float16Lanes(repeating: v[co.0])
        a00 = multiplyAdd(a00, p0, b0, fused)
        let b1 = Float16Lanes(repeating: v[co.1])
        a10 = multiplyAdd(a10, p0, b1, fused)
        let b2 = Float16Lanes(repeating: v[co.2])
        a20 = multiplyAdd(a20, p0, b2, fused)
        let b3 = Float16Lanes(repeating: v[co.3])
        a30 = multiplyAdd(a30, p0, b3, fused)
        p += 64; v += vs
    }
    storeLanes(ot + otRows.0 * 64 + 0, a00)
    storeLanes(ot + otRows.1 * 64 + 0, a10)
    storeLanes(ot + otRows.2 * 64 + 0, a20)
    storeLanes(ot + otRows.3 * 64 + 0, a30)
}

/// Output accumulation for 6 value channels × 16 query lanes over `count` keys, reading values in
/// `KernelLayout` (6 channels interleaved: `value[j·6 + r]`): 12 ymm accumulators on AVX2, where
/// the 4-channel tile's 8 leave the FMA pipes waiting on latency. Same sums as `valueKernelNarrow`.
@_transparent
public func valueKernelNarrow6(ot: UnsafeMutablePointer<Float>, otRows: (Int, Int, Int, Int, Int, Int),
    alpha: UnsafePointer<Float>, pt: UnsafePointer<Float>, count: Int, value: UnsafePointer<Float>, _ fused: Bool) {
    let al0 = loadLanes(alpha + 0)
    var a0 = loadLanes(ot + otRows.0 * 64) * al0
    var a1 = loadLanes(ot + otRows.1 * 64) * al0
    var a2 = loadLanes(ot + otRows.2 * 64) * al0
    var a3 = loadLanes(ot + otRows.3 * 64) * al0
    var a4 = loadLanes(ot + otRows.4 * 64) * al0
    var a5 = loadLanes(ot + otRows.5 * 64) * al0
    var p = pt, v = value
    for _ in 0..<count {
        let p0 = loadLanes(p)
        a0 = multiplyAdd(a0, p0, Float16Lanes(repeating: v[0]), fused)
        a1 = multiplyAdd(a1, p0, Float16Lanes(repeating: v[1]), fused)
        a2 = multiplyAdd(a2, p0, Float16Lanes(repeating: v[2]), fused)
        a3 = multiplyAdd(a3, p0, Float16Lanes(repeating: v[3]), fused)
        a4 = multiplyAdd(a4, p0, Float16Lanes(repeating: v[4]), fused)
        a5 = multiplyAdd(a5, p0, Float16Lanes(repeating: v[5]), fused)
        p += 64; v += 6
    }
    storeLanes(ot + otRows.0 * 64, a0)
    storeLanes(ot + otRows.1 * 64, a1)
    storeLanes(ot + otRows.2 * 64, a2)
    storeLanes(ot + otRows.3 * 64, a3)
    storeLanes(ot + otRows.4 * 64, a4)
    storeLanes(ot + otRows.5 * 64, a5)
}
