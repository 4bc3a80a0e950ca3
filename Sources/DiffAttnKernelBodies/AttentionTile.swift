// One tile of attention: up to 64 query rows of one (batch, head) against all keys.
//
// Layout: query rows live in vector lanes. The query tile is packed transposed (`qt[d][lane]`),
// scores come out transposed (`st[key][lane]`), and the output accumulates transposed
// (`ot[channel][lane]`). Softmax statistics are then per lane, so max and sum over keys are plain
// vertical vector ops, and K and V are read in place through their strides: nothing but the
// 64-row query tile is ever packed. Every output's reduction order depends only on the tile, never
// on which thread runs it, so results are identical for any thread count.

public enum TileMode: Int, Sendable {
    /// Online softmax over blocks of `TileGeometry.keyBlock` keys; O(tile) scratch.
    case flash
    /// Classic order: `mask + scale·(Q·Kᵀ)` for all keys, softmax, `·V`.
    case math
    /// The math path's first half: write the softmax probabilities to `output`.
    case probabilities
}

/// The layout the narrow kernels read fastest, which SDPA packs a head's keys and values into when
/// several tiles share them: keys in groups of `keyGroup` interleaved by channel (`[group][d][6]`:
/// the score kernel's 6 broadcasts per channel are one 24-byte read), values in groups of
/// `channelGroup` channels interleaved by key (`[group][key][6]`: the 6-channel value kernel's
/// broadcasts per key are one 24-byte read). Past-the-end keys and channels repeat the last one,
/// as the kernels' clamped offsets do on the plain layout, so every product is the same.
public enum KernelLayout {
    public static let keyGroup = 6
    public static let channelGroup = 6
    public static func keyFloats(keyLength: Int, headDim: Int) -> Int {
        (keyLength + keyGroup - 1) / keyGroup * keyGroup * headDim
    }
    public static func valueFloats(keyLength: Int, valueDim: Int) -> Int {
        (valueDim + channelGroup - 1) / channelGroup * channelGroup * keyLength
    }
}

public enum TileGeometry {
    /// Query rows per tile: 4 vectors of 16 lanes.
    public static let lanes = 64
    /// Keys per online-softmax step; a multiple of the score kernel's 6 key rows.
    public static let keyBlock = 96

    /// Scratch floats one worker needs; every region is a whole number of 256-byte rows,
    /// so a 64-byte aligned base keeps each region aligned.
    /// `bfloat16` adds room for one key block of K and V widened to float32.
    public static func scratchFloats(mode: TileMode, headDim: Int, valueDim: Int, keyLength: Int,
                                     bfloat16: Bool = false) -> Int {
        let scoreRows = mode == .flash ? keyBlock : (max(keyLength, 1) + keyBlock - 1) / keyBlock * keyBlock
        let outputRows = mode == .probabilities ? 0 : max(valueDim, 1)
        let widened = bfloat16 ? keyBlock * (max(headDim, 1) + max(valueDim, 1)) : 0
        return lanes * (max(headDim, 1) + scoreRows + keyBlock + outputRows + 3) + widened
    }
}

/// Everything one tile needs, with pointers already offset to its (batch, head, first row).
public struct AttentionTile {
    public var query: UnsafePointer<Float>, queryTokenStride: Int, queryChannelStride: Int
    public var key: UnsafePointer<Float>, keyTokenStride: Int, keyChannelStride: Int
    public var value: UnsafePointer<Float>, valueTokenStride: Int, valueChannelStride: Int
    /// Output rows (`mode == .probabilities`: probability rows, channel = key).
    public var output: UnsafeMutablePointer<Float>, outputTokenStride: Int, outputChannelStride: Int
    /// 0 none, 1 additive (`additiveMask`), 2 boolean (`booleanMask`).
    public var maskKind: Int
    public var additiveMask: UnsafePointer<Float>?, booleanMask: UnsafePointer<UInt8>?
    public var maskTokenStride: Int, maskChannelStride: Int
    public var rows: Int, firstRow: Int, keyLength: Int, headDim: Int, valueDim: Int
    public var scale: Float, isCausal: Bool, fullyMaskedGiveNaN: Bool
    public var mode: TileMode
    /// 1: query, key and value hold bfloat16 bit patterns (the pointers' addresses, element
    /// strides); they are widened to float32 as the tile reads them. 0: float32.
    public var inputFormat = 0
    /// 1: output rows are written as bfloat16 (round to nearest even). 0: float32.
    public var outputFormat = 0
    /// True: `key` and `value` point at this head's keys and values in the kernels' own layout
    /// (`KernelLayout`, SDPAPacking.swift), and their stride fields are unused.
    public var packed = false
    /// `TileGeometry.scratchFloats(...)` floats, 64-byte aligned.
    public var scratch: UnsafeMutablePointer<Float>
    /// Flash only: where row `lane` writes its natural-log log-sum-exp of the scaled, masked scores
    /// (`lse[lane * lseTokenStride]`; -inf for a row with every key removed). nil: not wanted.
    public var lse: UnsafeMutablePointer<Float>? = nil
    public var lseTokenStride: Int = 1

    public init(query: UnsafePointer<Float>, queryTokenStride: Int, queryChannelStride: Int,
                key: UnsafePointer<Float>, keyTokenStride: Int, keyChannelStride: Int,
                value: UnsafePointer<Float>, valueTokenStride: Int, valueChannelStride: Int,
                output: UnsafeMutablePointer<Float>, outputTokenStride: Int, outputChannelStride: Int,
                maskKind: Int, additiveMask: UnsafePointer<Float>?, booleanMask: UnsafePointer<UInt8>?,
                maskTokenStride: Int, maskChannelStride: Int,
                rows: Int, firstRow: Int, keyLength: Int, headDim: Int, valueDim: Int,
                scale: Float, isCausal: Bool, fullyMaskedGiveNaN: Bool, mode: TileMode,
                scratch: UnsafeMutablePointer<Float>) {
        self.query = query; self.queryTokenStride = queryTokenStride; self.queryChannelStride = queryChannelStride
        self.key = key; self.keyTokenStride = keyTokenStride; self.keyChannelStride = keyChannelStride
        self.value = value; self.valueTokenStride = valueTokenStride; self.valueChannelStride = valueChannelStride
        self.output = output; self.outputTokenStride = outputTokenStride; self.outputChannelStride = outputChannelStride
        self.maskKind = maskKind; self.additiveMask = additiveMask; self.booleanMask = booleanMask
        self.maskTokenStride = maskTokenStride; self.maskChannelStride = maskChannelStride
        self.rows = rows; self.firstRow = firstRow; self.keyLength = keyLength
        self.headDim = headDim; self.valueDim = valueDim
        self.scale = scale; self.isCausal = isCausal; self.fullyMaskedGiveNaN = fullyMaskedGiveNaN
        self.mode = mode; self.scratch = scratch
    }
}

/// `combineScores` compiled by an ISA entry point as a function of its own (see `attentionTileBody`).
public typealias CombineStep = (_ t: AttentionTile, _ scores: UnsafeMutablePointer<Float>, _ blockStart: Int,
                                _ count: Int, _ maskTile: UnsafeMutablePointer<Float>?, _ flash: Bool,
                                _ runningMax: UnsafeMutablePointer<Float>, _ runningSum: UnsafeMutablePointer<Float>,
                                _ alpha: UnsafeMutablePointer<Float>) -> Void
/// `normaliseRows` compiled by an ISA entry point as a function of its own.
public typealias NormaliseStep = (_ t: AttentionTile, _ scores: UnsafeMutablePointer<Float>) -> Void

/// Runs one tile. `wide` picks the 4-vector register tiles (AVX-512), `fused` FMA instructions;
/// both are literals in each ISA entry point so the unused paths fold away. The softmax steps come
/// in as separately compiled functions: inlined into this large body, the stdlib's lane select
/// (`replacing(with:where:)`) is left as an out-of-line call whose ABI splits SIMD16 into four
/// xmm pieces, and LLVM then runs the whole exp polynomial on xmm registers.
@_transparent
public func attentionTileBody(_ t: AttentionTile, wide: Bool, fused: Bool,
                              combine: CombineStep, normalise: NormaliseStep) {
    let lanes = TileGeometry.lanes, block = TileGeometry.keyBlock
    let depth = t.headDim, channels = t.valueDim, keyCount = t.keyLength
    let flash = t.mode == .flash
    let scoreRows = flash ? block : (max(keyCount, 1) + block - 1) / block * block
    let qt = t.scratch
    let st = qt + max(depth, 1) * lanes
    let maskTile = st + scoreRows * lanes
    let ot = maskTile + block * lanes
    let runningMax = ot + (t.mode == .probabilities ? 0 : max(channels, 1)) * lanes
    let runningSum = runningMax + lanes, alpha = runningSum + lanes
    let log2e: Float = 1.442_695_040_888_963_4

    // Flash folds scale·log2(e) into Q so that its softmax is a bare exp2.
    let queryScale: Float = flash ? t.scale * log2e : 1
    let bf16 = t.inputFormat == 1
    for d in 0..<depth {
        for lane in 0..<lanes {
            let i = lane * t.queryTokenStride + d * t.queryChannelStride
            qt[d * lanes + lane] = lane < t.rows ? (bf16 ? widenedElement(t.query, i) : t.query[i]) * queryScale : 0
        }
    }
    // bf16: each key block of K and V is widened here first, and the kernels read that copy.
    let widenedKeys = alpha + lanes, widenedValues = widenedKeys + block * max(depth, 1)
    for i in 0..<(channels * lanes) where t.mode != .probabilities { ot[i] = 0 }
    for lane in 0..<lanes {
        runningMax[lane] = -.infinity; runningSum[lane] = 0; alpha[lane] = 1
    }

    // Causal (top-left): no row of this tile sees keys at or beyond firstRow + rows.
    let keyEnd = flash && t.isCausal ? min(keyCount, t.firstRow + t.rows) : keyCount
    var blockStart = 0
    while blockStart < keyEnd {
        let count = min(block, keyEnd - blockStart)
        let scores = flash ? st : st + blockStart * lanes
        if bf16 {
            let kb = widenKeyBlock(t, blockStart: blockStart, count: count, into: widenedKeys)
            computeScores(kb, qt: qt, blockStart: 0, count: count, scores: scores, wide: wide, fused: fused)
        } else {
            computeScores(t, qt: qt, blockStart: blockStart, count: count, scores: scores, wide: wide, fused: fused)
        }
        let maskOnTile = t.maskKind != 0 && t.maskTokenStride != 0
        if maskOnTile {
            fillMaskTile(t, blockStart: blockStart, count: count, tile: maskTile, multiplier: flash ? log2e : 1)
        }
        combine(t, scores, blockStart, count, maskOnTile ? maskTile : nil, flash, runningMax, runningSum, alpha)
        if flash {
            accumulateBlock(t, ot: ot, alpha: alpha, probabilities: scores, blockStart: blockStart, count: count,
                            widened: bf16 ? widenedValues : nil, wide: wide, fused: fused)
        }
        blockStart += count
    }
    if flash {
        finishFlash(t, ot: ot, runningSum: runningSum, runningMax: runningMax)
        return
    }
    normalise(t, st)
    if t.mode == .probabilities {
        for lane in 0..<t.rows {
            let row = t.output + lane * t.outputTokenStride
            for j in 0..<keyCount { row[j * t.outputChannelStride] = st[j * lanes + lane] }
        }
        return
    }
    blockStart = 0
    while blockStart < keyCount {
        let count = min(block, keyCount - blockStart)
        accumulateBlock(t, ot: ot, alpha: alpha, probabilities: st + blockStart * lanes, blockStart: blockStart,
                        count: count, widened: bf16 ? widenedValues : nil, wide: wide, fused: fused)
        blockStart += count
    }
    for lane in 0..<t.rows {
        for c in 0..<channels { storeOutput(t, lane: lane, channel: c, ot[c * lanes + lane]) }
    }
}
