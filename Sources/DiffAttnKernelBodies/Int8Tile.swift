// One tile of int8 attention (SageAttention's recipe; docs/performance.md "int8 attention"): the
// flash tile of AttentionTile.swift with Q·Kᵀ and P·V on integer kernels (diffattn_int8.c).
// K and V arrive quantised by the caller (SDPAInt8.swift); the tile quantises its own query rows.
// Every reduction order depends only on the tile, so results are the same for any thread count.
import CDiffAttnCPUID

/// K and V of one (batch, key/value head), quantised.
public struct Int8KeyValues {
    /// Keys as int16 rows of `keyPairs` pair words (values in -127...127, K minus its mean over tokens).
    public var keys: UnsafePointer<Int16>
    public var keyPairs: Int
    /// One dequantisation scale per block of `TileGeometry.keyBlock` keys.
    public var keyScales: UnsafePointer<Float>
    /// Values as pair words: word (p, c) holds v[2p][c], v[2p+1][c] in -127...127.
    public var values: UnsafePointer<Int32>
    /// Per channel: dequantisation scale / 32767 (P is held in 15 bits).
    public var valueScales: UnsafePointer<Float>
    public init(keys: UnsafePointer<Int16>, keyPairs: Int, keyScales: UnsafePointer<Float>,
                values: UnsafePointer<Int32>, valueScales: UnsafePointer<Float>) {
        self.keys = keys; self.keyPairs = keyPairs; self.keyScales = keyScales
        self.values = values; self.valueScales = valueScales
    }
}

public enum Int8TileGeometry {
    /// Scratch floats of one worker: the flash tile's, plus the packed probabilities.
    public static func scratchFloats(headDim: Int, valueDim: Int) -> Int {
        TileGeometry.scratchFloats(mode: .flash, headDim: headDim + 1, valueDim: valueDim, keyLength: 0)
            + TileGeometry.keyBlock / 2 * TileGeometry.lanes
    }
}

/// `x` rounded to the nearest integer in -127...127 (NaN → 0: non-finite inputs give unspecified
/// outputs on the int8 path, never a trap).
@_transparent
public func quantisedInt8(_ x: Float) -> Int16 {
    let r = x.rounded()
    return r.isNaN ? 0 : Int16(max(-127, min(127, r)))
}

/// Runs one flash tile on int8 Q·Kᵀ and 15×8-bit P·V. `t.query` is float32 or bf16 (`inputFormat`);
/// `t.key`/`t.value` are unused. The mask, causality and the online softmax are the float tile's.
@_transparent
public func int8AttentionTileBody(_ t: AttentionTile, _ kv: Int8KeyValues, combine: CombineStep) {
    let lanes = TileGeometry.lanes, block = TileGeometry.keyBlock
    let pairs = kv.keyPairs, channels = t.valueDim
    let qp = UnsafeMutableRawPointer(t.scratch).assumingMemoryBound(to: Int32.self)
    let st = t.scratch + max(2 * pairs, 1) * lanes
    let maskTile = st + block * lanes
    let ot = maskTile + block * lanes
    let runningMax = ot + max(channels, 1) * lanes
    let runningSum = runningMax + lanes, alpha = runningSum + lanes
    let pp = UnsafeMutableRawPointer(alpha + lanes).assumingMemoryBound(to: Int32.self)
    let bf16 = t.inputFormat == 1

    // Q: one symmetric scale for the tile (SageAttention quantises Q per block of rows).
    @inline(__always) func q(_ lane: Int, _ d: Int) -> Float {
        let i = lane * t.queryTokenStride + d * t.queryChannelStride
        return bf16 ? widenedElement(t.query, i) : t.query[i]
    }
    var largest: Float = 0
    for lane in 0..<t.rows { for d in 0..<t.headDim { largest = max(largest, abs(q(lane, d))) } }
    let queryScale = largest > 0 ? largest / 127 : 1
    let inverse = 1 / queryScale
    for p in 0..<pairs {
        for lane in 0..<lanes {
            var word: UInt32 = 0
            if lane < t.rows {
                let lo = quantisedInt8(q(lane, 2 * p) * inverse)
                let hi = 2 * p + 1 < t.headDim ? quantisedInt8(q(lane, 2 * p + 1) * inverse) : 0
                word = UInt32(UInt16(bitPattern: lo)) | UInt32(UInt16(bitPattern: hi)) << 16
            }
            qp[p * lanes + lane] = Int32(bitPattern: word)
        }
    }
    for i in 0..<(channels * lanes) { ot[i] = 0 }
    for lane in 0..<lanes { runningMax[lane] = -.infinity; runningSum[lane] = 0; alpha[lane] = 1 }

    let log2e: Float = 1.442_695_040_888_963_4
    let keyEnd = t.isCausal ? min(t.keyLength, t.firstRow + t.rows) : t.keyLength
    var blockStart = 0
    while blockStart < keyEnd {
        let count = min(block, keyEnd - blockStart)
        let factor = queryScale * kv.keyScales[blockStart / block] * t.scale * log2e
        diffattn_int8_scores_avx2(qp, Int64(pairs), kv.keys + blockStart * 2 * pairs, Int64(2 * pairs),
                                  Int64(count), factor, st)
        let maskOnTile = t.maskKind != 0 && t.maskTokenStride != 0
        if maskOnTile { fillMaskTile(t, blockStart: blockStart, count: count, tile: maskTile, multiplier: log2e) }
        combine(t, st, blockStart, count, maskOnTile ? maskTile : nil, true, runningMax, runningSum, alpha)
        diffattn_int8_pack_probabilities_avx2(st, Int64(count), pp)
        diffattn_int8_values_avx2(pp, Int64((count + 1) / 2), kv.values + blockStart / 2 * channels,
                                  Int64(channels), Int64(channels), kv.valueScales, alpha, ot)
        blockStart += count
    }
    finishFlash(t, ot: ot, runningSum: runningSum, runningMax: runningMax)
}
