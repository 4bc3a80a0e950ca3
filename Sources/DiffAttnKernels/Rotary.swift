import Glibc

// Rotary position embeddings applied in place to (batch, tokens, heads, lanes) activations.
// Three lane rules cover every published variant:
//  - interleaved:  y[j] = x[j]·cos[j] + r[j]·sin[j], r[2i] = −x[2i+1], r[2i+1] = x[2i] (tables as wide as the span)
//  - rotateHalf:   the same with r = [−x[h:], x[:h]] over a span of 2h lanes (tables 2h wide)
//  - pairAngles:   one angle per pair: (a, b) → (a·c − b·s, a·s + b·c) (tables half as wide as the span)
// The rotated lanes are a span `[laneOffset, laneOffset + width)` of each head; the rest pass through.

/// Which rotation the tables describe.
public enum RotaryRule: Sendable {
    case interleaved, rotateHalf, pairAngles
}

/// cos/sin tables. Element (b, row, head, lane) is at `b·batchStride + row·rowStride +
/// head·headStride + lane·laneStride` from `cos` (and from `sin`). Strides of 0 broadcast.
public struct RotaryTable {
    public var cos: UnsafePointer<Float>
    public var sin: UnsafePointer<Float>
    public var batchStride: Int, rowStride: Int, headStride: Int, laneStride: Int
    /// Table row of each token, read at `b·rowIndexBatchStride + token`; nil = the token index.
    public var rowIndex: UnsafePointer<Int>?
    public var rowIndexBatchStride: Int

    public init(cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, batchStride: Int = 0, rowStride: Int,
                headStride: Int = 0, laneStride: Int = 1, rowIndex: UnsafePointer<Int>? = nil,
                rowIndexBatchStride: Int = 0) {
        self.cos = cos; self.sin = sin
        self.batchStride = batchStride; self.rowStride = rowStride
        self.headStride = headStride; self.laneStride = laneStride
        self.rowIndex = rowIndex; self.rowIndexBatchStride = rowIndexBatchStride
    }
}

/// Where the activations are: element (b, t, h, lane) is at `b·batchStride + t·tokenStride +
/// h·headStride + lane` (lanes contiguous).
public struct RotaryTarget {
    public var data: UnsafeMutablePointer<Float>
    public var batch: Int, tokens: Int, heads: Int
    public var batchStride: Int, tokenStride: Int, headStride: Int
    public init(data: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, heads: Int,
                batchStride: Int, tokenStride: Int, headStride: Int) {
        self.data = data; self.batch = batch; self.tokens = tokens; self.heads = heads
        self.batchStride = batchStride; self.tokenStride = tokenStride; self.headStride = headStride
    }
}

/// Rotates lanes `[laneOffset, laneOffset + width)` of every head of every token, in place.
/// Work is split over batch × token blocks on the thread pool; results do not depend on the
/// thread count. `width` must be even.
public func applyRotary(_ x: RotaryTarget, laneOffset: Int, width: Int, rule: RotaryRule, table: RotaryTable) {
    let block = 16
    let blocks = (x.tokens + block - 1) / block
    Parallel.forEach(x.batch * blocks) { task in
        let b = task / blocks, t0 = task % blocks * block
        for t in t0..<min(t0 + block, x.tokens) {
            let row = table.rowIndex.map { $0[b * table.rowIndexBatchStride + t] } ?? t
            for h in 0..<x.heads {
                let p = x.data + b * x.batchStride + t * x.tokenStride + h * x.headStride + laneOffset
                let off = b * table.batchStride + row * table.rowStride + h * table.headStride
                rotateSpan(p, width: width, rule: rule, cos: table.cos + off, sin: table.sin + off,
                           laneStride: table.laneStride)
            }
        }
    }
}

@inline(__always)
private func rotateSpan(_ p: UnsafeMutablePointer<Float>, width: Int, rule: RotaryRule,
                        cos c: UnsafePointer<Float>, sin s: UnsafePointer<Float>, laneStride ls: Int) {
    switch rule {
    case .interleaved:
        if ls == 1 { interleavedContiguous(p, width, c, s); return }
        var i = 0
        while i < width {
            let a = p[i], bb = p[i + 1]
            p[i] = a * c[i * ls] - bb * s[i * ls]
            p[i + 1] = bb * c[(i + 1) * ls] + a * s[(i + 1) * ls]
            i += 2
        }
    case .rotateHalf:
        let half = width / 2
        if ls == 1 && half % 8 == 0 { rotateHalfContiguous(p, half, c, s); return }
        for i in 0..<half {
            let a = p[i], bb = p[i + half]
            p[i] = a * c[i * ls] - bb * s[i * ls]
            p[i + half] = bb * c[(i + half) * ls] + a * s[(i + half) * ls]
        }
    case .pairAngles:
        if ls == 2 {   // interleaved (real, imaginary) tables: a constant stride the loop can vectorise
            for i in 0..<(width / 2) {
                let a = p[2 * i], bb = p[2 * i + 1], ci = c[2 * i], si = s[2 * i]
                p[2 * i] = a * ci - bb * si
                p[2 * i + 1] = a * si + bb * ci
            }
            return
        }
        for i in 0..<(width / 2) {
            let a = p[2 * i], bb = p[2 * i + 1], ci = c[i * ls], si = s[i * ls]
            p[2 * i] = a * ci - bb * si
            p[2 * i + 1] = a * si + bb * ci
        }
    }
}

/// Interleaved rule on contiguous tables: pairs in registers; the loop vectorises without shuffles
/// through memory.
@inline(__always)
private func interleavedContiguous(_ p: UnsafeMutablePointer<Float>, _ width: Int,
                                   _ c: UnsafePointer<Float>, _ s: UnsafePointer<Float>) {
    for i in 0..<(width / 2) {
        let a = p[2 * i], b = p[2 * i + 1]
        p[2 * i] = a * c[2 * i] - b * s[2 * i]
        p[2 * i + 1] = b * c[2 * i + 1] + a * s[2 * i + 1]
    }
}

@inline(__always)
private func rotateHalfContiguous(_ p: UnsafeMutablePointer<Float>, _ half: Int,
                                  _ c: UnsafePointer<Float>, _ s: UnsafePointer<Float>) {
    var i = 0
    while i < half {
        let a = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        let b = UnsafeRawPointer(p + i + half).loadUnaligned(as: SIMD8<Float>.self)
        let c1 = UnsafeRawPointer(c + i).loadUnaligned(as: SIMD8<Float>.self)
        let s1 = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD8<Float>.self)
        let c2 = UnsafeRawPointer(c + i + half).loadUnaligned(as: SIMD8<Float>.self)
        let s2 = UnsafeRawPointer(s + i + half).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(p + i).storeBytes(of: a * c1 - b * s1, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(p + i + half).storeBytes(of: b * c2 + a * s2, as: SIMD8<Float>.self)
        i += 8
    }
}

/// How `rotaryTables` lays out its cos/sin tables (diffusers' `get_1d_rotary_pos_embed`).
public enum RotaryTableLayout: Sendable {
    /// `use_real=True, repeat_interleave_real=True`: each value twice in a row, width `dim`.
    case repeatInterleaved
    /// `use_real=True, repeat_interleave_real=False`: `[cos, cos]`, width `dim`.
    case concatenated
    /// `use_real=False`: one value per pair (the real and imaginary parts), width `dim/2`.
    case halfWidth
}

/// cos and sin tables for `positions` (one row each), as diffusers' `get_1d_rotary_pos_embed`:
/// angle `pos·ω_i` with `ω_i = 1/((θ·ntk)^(2i/dim)) / linearFactor`. `float64` computes the
/// frequencies and angles in double precision (Flux's `freqs_dtype=torch.float64`), else in float32
/// as torch's default does. `dim` must be even.
public func rotaryTables(dim: Int, positions: [Double], theta: Double, linearFactor: Double, ntkFactor: Double,
                         layout: RotaryTableLayout, float64: Bool) -> (cos: [Float], sin: [Float]) {
    let half = dim / 2
    let base = theta * ntkFactor
    let width = layout == .halfWidth ? half : dim
    var cosTable = [Float](repeating: 0, count: positions.count * width)
    var sinTable = cosTable
    for (r, pos) in positions.enumerated() {
        for i in 0..<half {
            let c: Float, s: Float
            if float64 {
                let angle = pos * (1.0 / Glibc.pow(base, Double(2 * i) / Double(dim)) / linearFactor)
                (c, s) = (Float(Glibc.cos(angle)), Float(Glibc.sin(angle)))
            } else {
                let omega = (1 / Glibc.powf(Float(base), Float(2 * i) / Float(dim))) / Float(linearFactor)
                let angle = Float(pos) * omega
                (c, s) = (Float(Glibc.cos(Double(angle))), Float(Glibc.sin(Double(angle))))
            }
            switch layout {
            case .repeatInterleaved:
                cosTable[r * width + 2 * i] = c; cosTable[r * width + 2 * i + 1] = c
                sinTable[r * width + 2 * i] = s; sinTable[r * width + 2 * i + 1] = s
            case .concatenated:
                cosTable[r * width + i] = c; cosTable[r * width + i + half] = c
                sinTable[r * width + i] = s; sinTable[r * width + i + half] = s
            case .halfWidth:
                cosTable[r * width + i] = c; sinTable[r * width + i] = s
            }
        }
    }
    return (cosTable, sinTable)
}
