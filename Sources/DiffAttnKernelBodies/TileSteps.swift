import CDiffAttnCPUID
import Glibc

// The steps of `attentionTileBody`, one function each; all inline into the ISA entry points.

/// Raw dot products `st[j][lane] = qt[·][lane] · k[blockStart + j]` for `count` keys (rounded up
/// to 6; the extra rows read the last key and are never used).
@_transparent
@usableFromInline internal func computeScores(_ t: AttentionTile, qt: UnsafeMutablePointer<Float>, blockStart: Int, count: Int,
                            scores: UnsafeMutablePointer<Float>, wide: Bool, fused: Bool) {
    let last = t.keyLength - 1, ks = t.keyTokenStride
    // Narrow tiles take one 16-lane group at a time through every key of the block: that group's
    // slice of the packed queries (16 × headDim floats, 8 KB at 128) then stays in L1 while the
    // keys stream, where the whole 64-lane tile (32 KB at 128) would not.
    for m in 0..<(wide ? 1 : 4) {
        var g = 0
        while g < count {
            let j = blockStart + g
            let o = (min(j, last) * ks, min(j + 1, last) * ks, min(j + 2, last) * ks,
                     min(j + 3, last) * ks, min(j + 4, last) * ks, min(j + 5, last) * ks)
            let out = scores + g * 64 + 16 * m
            // A unit channel stride as a literal lets the key loads use plain base + index addressing.
            if t.packed {   // KernelLayout: this group's 6 keys interleaved, j a multiple of 6
                let group = t.key + j * t.headDim, o6 = (0, 1, 2, 3, 4, 5)
                if wide {
                    scoreKernelWide(qt: qt, depth: t.headDim, key: group, rowOffsets: o6, channelStride: 6, st: out, fused)
                } else {
                    scoreKernelNarrow(qt: qt + 16 * m, depth: t.headDim, key: group, rowOffsets: o6, channelStride: 6, st: out, fused)
                }
            } else if wide {
                if t.keyChannelStride == 1 {
                    scoreKernelWide(qt: qt, depth: t.headDim, key: t.key, rowOffsets: o, channelStride: 1, st: out, fused)
                } else {
                    scoreKernelWide(qt: qt, depth: t.headDim, key: t.key, rowOffsets: o, channelStride: t.keyChannelStride, st: out, fused)
                }
            } else if t.keyChannelStride == 1 {
                scoreKernelNarrow(qt: qt + 16 * m, depth: t.headDim, key: t.key, rowOffsets: o, channelStride: 1, st: out, fused)
            } else {
                scoreKernelNarrow(qt: qt + 16 * m, depth: t.headDim, key: t.key, rowOffsets: o,
                                  channelStride: t.keyChannelStride, st: out, fused)
            }
            g += 6
        }
    }
}

/// A mask that varies along the query axis, transposed into `tile[j][lane]` (boolean → 0 / -inf).
@_transparent
@usableFromInline internal func fillMaskTile(_ t: AttentionTile, blockStart: Int, count: Int,
                           tile: UnsafeMutablePointer<Float>, multiplier: Float) {
    let lanes = TileGeometry.lanes, mc = t.maskChannelStride
    for lane in 0..<lanes {
        if lane >= t.rows {
            for j in 0..<count { tile[j * lanes + lane] = 0 }
        } else if let additive = t.additiveMask {
            let row = additive + lane * t.maskTokenStride + blockStart * mc
            for j in 0..<count { tile[j * lanes + lane] = row[j * mc] * multiplier }
            if lane == 0 && mc == 1 && blockStart + 2 * count <= t.keyLength {
                // The next block's rows, while this one computes (64 rows outrun the hardware prefetcher).
                diffattn_prefetch_rows(row + count, t.maskTokenStride, t.rows, count)
            }
        } else if let boolean = t.booleanMask {
            let row = boolean + lane * t.maskTokenStride + blockStart * mc
            for j in 0..<count { tile[j * lanes + lane] = row[j * mc] != 0 ? 0 : -.infinity }
        }
    }
}

/// The mask value of key `j` when the mask is the same for every query row of the tile.
@_transparent
@usableFromInline internal func broadcastMaskValue(_ t: AttentionTile, key j: Int, multiplier: Float) -> Float {
    if let additive = t.additiveMask { return additive[j * t.maskChannelStride] * multiplier }
    if let boolean = t.booleanMask { return boolean[j * t.maskChannelStride] != 0 ? 0 : -.infinity }
    return 0
}

/// Applies scale (math only; flash folded it into Q), mask and causality to a block of scores.
/// Flash then takes the online-softmax step: new running max, `alpha = exp2(old − new)`, the block's
/// probabilities in place, and the running sum. A lane whose max is still -inf subtracts 0
/// instead, so a fully masked prefix gives probabilities 0, never `-inf − -inf`.
@_transparent
public func combineScores(_ t: AttentionTile, scores: UnsafeMutablePointer<Float>, blockStart: Int, count: Int,
                            maskTile: UnsafeMutablePointer<Float>?, flash: Bool,
                            runningMax: UnsafeMutablePointer<Float>, runningSum: UnsafeMutablePointer<Float>,
                            alpha: UnsafeMutablePointer<Float>, fused: Bool) {
    let lanes = TileGeometry.lanes
    let negInf = Float16Lanes(repeating: -.infinity)
    let scale = Float16Lanes(repeating: t.scale)
    let multiplier: Float = flash ? 1.442_695_040_888_963_4 : 1
    let broadcastMask = t.maskKind != 0 && t.maskTokenStride == 0
    let causalHere = t.isCausal && blockStart + count - 1 > t.firstRow
    let modifies = !flash || broadcastMask || maskTile != nil || causalHere
    let iota = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    for m in 0..<4 {
        let laneRow = SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: t.firstRow + m * 16)) &+ iota
        var blockMax = negInf
        for j in 0..<count {
            let p = scores + j * lanes + m * 16
            var s = loadLanes(p)
            if modifies {
                if !flash { s = scale * s }          // classic: mask + scale·(Q·Kᵀ)
                if broadcastMask {
                    s = s + Float16Lanes(repeating: broadcastMaskValue(t, key: blockStart + j, multiplier: multiplier))
                } else if let tile = maskTile {
                    s = s + loadLanes(tile + j * lanes + m * 16)
                }
                if causalHere {
                    let key = SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: blockStart + j))
                    s = s.replacing(with: negInf, where: laneRow .< key)
                }
                storeLanes(p, s)
            }
            if flash { blockMax = lanewiseMax(blockMax, s) }
        }
        guard flash else { continue }
        let oldMax = loadLanes(runningMax + m * 16)
        let newMax = lanewiseMax(oldMax, blockMax)
        let subtract = newMax.replacing(with: 0, where: newMax .== negInf)
        let a = exp2Lanes(oldMax - subtract, fused)
        storeLanes(alpha + m * 16, a)
        storeLanes(runningMax + m * 16, newMax)
        var sum = Float16Lanes()
        for j in 0..<count {
            let p = scores + j * lanes + m * 16
            let e = exp2Lanes(loadLanes(p) - subtract, fused)
            storeLanes(p, e)
            sum += e
        }
        storeLanes(runningSum + m * 16, loadLanes(runningSum + m * 16) * a + sum)
    }
}

/// `ot = ot·alpha + Pᵀ-block · V-block` for every value channel.
@_transparent
@usableFromInline internal func accumulateValues(_ t: AttentionTile, ot: UnsafeMutablePointer<Float>, alpha: UnsafeMutablePointer<Float>,
                               probabilities: UnsafeMutablePointer<Float>, blockStart: Int, count: Int,
                               wide: Bool, fused: Bool) {
    let last = t.valueDim - 1
    if t.packed {
        // KernelLayout: 6 channels interleaved, one 24-byte row per key. One 16-lane group through
        // every channel, so its probabilities (16 × block floats) stay in L1 (as in `computeScores`).
        let g = KernelLayout.channelGroup
        for m in 0..<4 {
            var c = 0
            while c < t.valueDim {
                // Rows past the last channel repeat it: the duplicate computes and stores identical values.
                let r = (c, min(c + 1, last), min(c + 2, last), min(c + 3, last), min(c + 4, last), min(c + 5, last))
                valueKernelNarrow6(ot: ot + 16 * m, otRows: r, alpha: alpha + 16 * m, pt: probabilities + 16 * m,
                                   count: count, value: t.value + c * t.keyLength + blockStart * g, fused)
                c += g
            }
        }
        return
    }
    let v = t.value + blockStart * t.valueTokenStride, vc = t.valueChannelStride
    var c = 0
    while c < t.valueDim {
        // Rows past the last channel repeat it: the duplicate computes and stores identical values.
        let r = (c, min(c + 1, last), min(c + 2, last), min(c + 3, last))
        let co = (r.0 * vc, r.1 * vc, r.2 * vc, r.3 * vc)
        if wide {
            valueKernelWide(ot: ot, otRows: r, alpha: alpha, pt: probabilities, count: count, value: v,
                            channelOffsets: co, tokenStride: t.valueTokenStride, fused)
        } else {
            for m in 0..<4 {
                valueKernelNarrow(ot: ot + 16 * m, otRows: r, alpha: alpha + 16 * m, pt: probabilities + 16 * m,
                                  count: count, value: v, channelOffsets: co, tokenStride: t.valueTokenStride, fused)
            }
        }
        c += 4
    }
}

/// `accumulateValues` on V as stored, or (bf16) on the block widened into `widened` first.
@_transparent
@usableFromInline internal func accumulateBlock(_ t: AttentionTile, ot: UnsafeMutablePointer<Float>,
                                                alpha: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>,
                                                blockStart: Int, count: Int, widened: UnsafeMutablePointer<Float>?,
                                                wide: Bool, fused: Bool) {
    guard let widened else {
        accumulateValues(t, ot: ot, alpha: alpha, probabilities: probabilities, blockStart: blockStart,
                         count: count, wide: wide, fused: fused)
        return
    }
    var vb = t
    let dv = t.valueDim
    for j in 0..<count {
        let row = (blockStart + j) * t.valueTokenStride
        if t.valueChannelStride == 1 {
            widenRow((UnsafeRawPointer(t.value) + 2 * row).assumingMemoryBound(to: UInt16.self), dv, 1, into: widened + j * dv)
        } else {
            for c in 0..<dv { widened[j * dv + c] = widenedElement(t.value, row + c * t.valueChannelStride) }
        }
    }
    vb.value = UnsafePointer(widened); vb.valueTokenStride = dv; vb.valueChannelStride = 1
    accumulateValues(vb, ot: ot, alpha: alpha, probabilities: probabilities, blockStart: 0, count: count,
                     wide: wide, fused: fused)
}

/// bf16 keys `blockStart ..< blockStart + count` widened into `widened` (rows of `headDim`); returns
/// the tile re-pointed at that copy (its key 0 is `blockStart`, its key length `count`).
@_transparent
@usableFromInline internal func widenKeyBlock(_ t: AttentionTile, blockStart: Int, count: Int,
                                              into widened: UnsafeMutablePointer<Float>) -> AttentionTile {
    var kb = t
    let d = t.headDim
    for j in 0..<count {
        let row = (blockStart + j) * t.keyTokenStride
        if t.keyChannelStride == 1 {
            let src = (UnsafeRawPointer(t.key) + 2 * row).assumingMemoryBound(to: UInt16.self)
            widenRow(src, d, 1, into: widened + j * d)
        } else {
            for c in 0..<d { widened[j * d + c] = widenedElement(t.key, row + c * t.keyChannelStride) }
        }
    }
    kb.key = UnsafePointer(widened); kb.keyTokenStride = d; kb.keyChannelStride = 1; kb.keyLength = count
    return kb
}

/// Element `i` of a bf16 operand (`base` holds `UInt16` bit patterns) as float32.
@_transparent
@usableFromInline internal func widenedElement(_ base: UnsafePointer<Float>, _ i: Int) -> Float {
    Float(bitPattern: UInt32((UnsafeRawPointer(base) + 2 * i).load(as: UInt16.self)) << 16)
}

/// Writes output element (lane, channel) in the tile's output format.
@_transparent
@usableFromInline internal func storeOutput(_ t: AttentionTile, lane: Int, channel c: Int, _ x: Float) {
    let i = lane * t.outputTokenStride + c * t.outputChannelStride
    if t.outputFormat == 1 {
        (UnsafeMutableRawPointer(t.output) + 2 * i).storeBytes(of: roundedBFloat16(x), as: UInt16.self)
    } else {
        t.output[i] = x
    }
}

/// float32 → bf16 bits, round to nearest even; NaN stays a quiet NaN.
@_transparent
public func roundedBFloat16(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x40 }
    return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
}

/// Flash epilogue: divide by the running sum; a row whose keys are all masked gets NaN or 0.
/// With `t.lse` also the row's log-sum-exp: the running max and sum are in base 2 (scale·log2 e
/// was folded into Q), so ln Σ exp(s) = ln 2 · (max₂ + log₂ sum).
@_transparent
@usableFromInline internal func finishFlash(_ t: AttentionTile, ot: UnsafeMutablePointer<Float>, runningSum: UnsafeMutablePointer<Float>,
                                            runningMax: UnsafeMutablePointer<Float>) {
    let lanes = TileGeometry.lanes
    if let lse = t.lse {
        for lane in 0..<t.rows {
            let sum = runningSum[lane]
            lse[lane * t.lseTokenStride] = sum == 0 ? -.infinity
                : 0.693_147_180_559_945_3 * (runningMax[lane] + log2(sum))
        }
    }
    for lane in 0..<t.rows {
        let row = t.output + lane * t.outputTokenStride
        let sum = runningSum[lane]
        if sum == 0 {
            // No keys at all is an empty sum (zeros, like P·V with an empty key axis), not a masked row.
            let fill: Float = t.fullyMaskedGiveNaN && t.keyLength > 0 ? .nan : 0
            for c in 0..<t.valueDim { storeOutput(t, lane: lane, channel: c, fill) }
        } else {
            let inverse = 1 / sum
            if t.outputFormat == 0 {
                for c in 0..<t.valueDim { row[c * t.outputChannelStride] = ot[c * lanes + lane] * inverse }
            } else {
                for c in 0..<t.valueDim { storeOutput(t, lane: lane, channel: c, ot[c * lanes + lane] * inverse) }
            }
        }
    }
}

/// Classic softmax over all keys of the materialised scores, per lane: `exp(s − max) / Σ`.
/// An all `-inf` lane gives NaN like torch's softmax, or zeros when asked.
@_transparent
public func normaliseRows(_ t: AttentionTile, scores st: UnsafeMutablePointer<Float>, fused: Bool) {
    let lanes = TileGeometry.lanes, keyCount = t.keyLength
    let negInf = Float16Lanes(repeating: -.infinity)
    let log2e = Float16Lanes(repeating: 1.442_695_040_888_963_4)
    for m in 0..<4 {
        var maxima = negInf
        for j in 0..<keyCount { maxima = lanewiseMax(maxima, loadLanes(st + j * lanes + m * 16)) }
        let subtract = t.fullyMaskedGiveNaN ? maxima : maxima.replacing(with: 0, where: maxima .== negInf)
        var sum = Float16Lanes()
        for j in 0..<keyCount {
            let p = st + j * lanes + m * 16
            let e = exp2Lanes((loadLanes(p) - subtract) * log2e, fused)
            storeLanes(p, e)
            sum += e
        }
        var inverse = Float16Lanes(repeating: 1) / sum
        if !t.fullyMaskedGiveNaN { inverse = inverse.replacing(with: 0, where: sum .== 0) }
        for j in 0..<keyCount {
            let p = st + j * lanes + m * 16
            storeLanes(p, loadLanes(p) * inverse)
        }
    }
}
