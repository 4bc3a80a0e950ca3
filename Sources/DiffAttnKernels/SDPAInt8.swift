// int8 attention (SDPAPrecision.int8): K and V of every (batch, key/value head) are quantised once,
// then the query tiles run on integer kernels (Int8Tile.swift). SageAttention's recipe: K is
// smoothed by subtracting its mean over tokens — softmax is unchanged by a per-row constant, and
// the smoothed K has no shared offset to eat the int8 range — then quantised per key block; Q per
// tile; V per channel against P in 15-bit fixed point. See docs/performance.md "int8 attention".
import DiffAttnKernelBodies
import DiffAttnKernelsAVX2
import CDiffAttnCPUID

/// Whether this CPU runs the int8 path: it needs AVX2 (vpmaddwd). AVX512_VNNI / AVX-VNNI would
/// run it faster but are not used yet (no machine to test them on).
public var int8AttentionSupported: Bool { CPUFeatures.current.haswellClass }

/// Floats of quantised K and V the int8 path allocates for `p` (one copy per batch element and
/// key/value head, even where the caller's K/V broadcast over the batch): callers that take sizes
/// from outside check it before running.
public func int8AttentionScratchFloats(_ p: SDPAProblem) -> Int {
    let pairs = (p.headDim + 1) / 2, keyPairs = (p.keyLength + 1) / 2
    let blocks = (p.keyLength + TileGeometry.keyBlock - 1) / TileGeometry.keyBlock
    let perHead = p.keyLength.multipliedReportingOverflow(by: pairs).partialValue + blocks
        + keyPairs.multipliedReportingOverflow(by: p.valueDim).partialValue + p.valueDim
    let (total, overflow) = (p.batch * p.keyValueHeads).multipliedReportingOverflow(by: perHead)
    return overflow ? .max : total
}

/// `scaledDotProductAttention` with `precision == .int8`; always the flash order.
/// Precondition: `int8AttentionSupported` (the C boundary refuses otherwise).
func scaledDotProductAttentionInt8(_ p: SDPAProblem) {
    precondition(int8AttentionSupported, "int8 attention needs AVX2")
    let block = TileGeometry.keyBlock
    let pairs = (p.headDim + 1) / 2, keyPairs = (p.keyLength + 1) / 2, blocks = (p.keyLength + block - 1) / block
    let heads = p.batch * p.keyValueHeads
    // Per head: keys (int16 rows of 2·pairs), key scales, value pair words, value scales.
    let keyWords = p.keyLength * pairs, valueWords = keyPairs * p.valueDim
    let perHead = keyWords + blocks + valueWords + p.valueDim
    let storage = KernelScratch.allocate(floats: heads * perHead)
    defer { KernelScratch.free(storage, floats: heads * perHead) }
    func operands(_ index: Int) -> (UnsafeMutablePointer<Int16>, UnsafeMutablePointer<Float>,
                                    UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Float>) {
        let base = storage + index * perHead
        return (UnsafeMutableRawPointer(base).assumingMemoryBound(to: Int16.self), base + keyWords,
                UnsafeMutableRawPointer(base + keyWords + blocks).assumingMemoryBound(to: Int32.self),
                base + keyWords + blocks + valueWords)
    }
    Parallel.forEach(heads) { index in
        let b = index / p.keyValueHeads, h = index % p.keyValueHeads
        let (keys, keyScales, values, valueScales) = operands(index)
        quantiseKeys(p.key.advanced(by: b * p.key.strides.batch + h * p.key.strides.head), p.key.strides,
                     bf16: p.key.format == .bfloat16, length: p.keyLength, depth: p.headDim,
                     into: keys, scales: keyScales)
        quantiseValues(p.value.advanced(by: b * p.value.strides.batch + h * p.value.strides.head), p.value.strides,
                       bf16: p.value.format == .bfloat16, length: p.keyLength, channels: p.valueDim,
                       into: values, scales: valueScales)
    }
    let group = p.queryHeads / p.keyValueHeads, outputElement = p.outputFormat == .bfloat16 ? 2 : 4
    let lanes = TileGeometry.lanes, tilesPerHead = (p.queryLength + lanes - 1) / lanes
    let scratch = ScratchSlots(floats: Int8TileGeometry.scratchFloats(headDim: p.headDim, valueDim: p.valueDim))
    Parallel.forEachWorker(p.batch * p.queryHeads * tilesPerHead) { task, worker in
        let b = task / (p.queryHeads * tilesPerHead), h = task / tilesPerHead % p.queryHeads
        let firstRow = task % tilesPerHead * lanes, rows = min(lanes, p.queryLength - firstRow)
        let (keys, keyScales, values, valueScales) = operands(b * p.keyValueHeads + h / group)
        let q = p.query.strides, o = p.outputStrides
        let outputOffset = (b * o.batch + h * o.head + firstRow * o.token) * outputElement
        var tile = AttentionTile(
            query: p.query.advanced(by: b * q.batch + h * q.head + firstRow * q.token),
            queryTokenStride: q.token, queryChannelStride: q.channel,
            key: p.key.data, keyTokenStride: 0, keyChannelStride: 0, value: p.value.data, valueTokenStride: 0,
            valueChannelStride: 0,
            output: (UnsafeMutableRawPointer(p.output) + outputOffset).assumingMemoryBound(to: Float.self),
            outputTokenStride: o.token, outputChannelStride: o.channel,
            maskKind: 0, additiveMask: nil, booleanMask: nil, maskTokenStride: 0, maskChannelStride: 0,
            rows: rows, firstRow: firstRow, keyLength: p.keyLength, headDim: p.headDim, valueDim: p.valueDim,
            scale: p.scale, isCausal: p.isCausal, fullyMaskedGiveNaN: p.fullyMaskedRows == .nan,
            mode: .flash, scratch: scratch.buffer(for: worker))
        tile.inputFormat = p.query.format.rawValue
        tile.outputFormat = p.outputFormat.rawValue
        attachMask(p.mask, to: &tile, batch: b, head: h, firstRow: firstRow)
        int8AttentionTileAVX2(tile, Int8KeyValues(keys: keys, keyPairs: pairs, keyScales: keyScales,
                                                  values: values, valueScales: valueScales))
    }
    withExtendedLifetime(scratch) {}
}

@inline(__always)
private func element(_ base: UnsafePointer<Float>, _ i: Int, _ bf16: Bool) -> Float {
    bf16 ? Float(bitPattern: UInt32((UnsafeRawPointer(base) + 2 * i).load(as: UInt16.self)) << 16) : base[i]
}

/// K − mean over tokens, quantised symmetrically per block of `TileGeometry.keyBlock` keys.
private func quantiseKeys(_ k: UnsafePointer<Float>, _ s: Strides4, bf16: Bool, length: Int, depth: Int,
                          into out: UnsafeMutablePointer<Int16>, scales: UnsafeMutablePointer<Float>) {
    let rowWidth = (depth + 1) / 2 * 2, block = TileGeometry.keyBlock
    var mean = [Double](repeating: 0, count: depth)
    for j in 0..<length { for d in 0..<depth { mean[d] += Double(element(k, j * s.token + d * s.channel, bf16)) } }
    let centre = mean.map { Float($0 / Double(max(length, 1))) }
    var start = 0
    while start < length {
        let end = min(start + block, length)
        var largest: Float = 0
        for j in start..<end {
            for d in 0..<depth { largest = max(largest, abs(element(k, j * s.token + d * s.channel, bf16) - centre[d])) }
        }
        let scale = largest > 0 ? largest / 127 : 1, inverse = 1 / scale
        scales[start / block] = scale
        for j in start..<end {
            let row = out + j * rowWidth
            for d in 0..<depth {
                row[d] = quantisedInt8((element(k, j * s.token + d * s.channel, bf16) - centre[d]) * inverse)
            }
            if depth < rowWidth { row[depth] = 0 }
        }
        start = end
    }
}

/// V quantised symmetrically per channel, stored as pair words of consecutive tokens; the stored
/// scale includes P's 1/32767.
private func quantiseValues(_ v: UnsafePointer<Float>, _ s: Strides4, bf16: Bool, length: Int, channels: Int,
                            into out: UnsafeMutablePointer<Int32>, scales: UnsafeMutablePointer<Float>) {
    let halves = UnsafeMutableRawPointer(out).assumingMemoryBound(to: Int16.self)
    for c in 0..<channels {
        var largest: Float = 0
        for j in 0..<length { largest = max(largest, abs(element(v, j * s.token + c * s.channel, bf16))) }
        let scale = largest > 0 ? largest / 127 : 1, inverse = 1 / scale
        scales[c] = scale / 32767
        for j in 0..<length {
            halves[(j / 2 * channels + c) * 2 + j % 2] = quantisedInt8(element(v, j * s.token + c * s.channel, bf16) * inverse)
        }
        if length % 2 == 1 { halves[(length / 2 * channels + c) * 2 + 1] = 0 }
    }
}

/// Runs the int8 kernels' vpmaddwd probe on the calling thread: `iterations · 256` integer
/// operations (a multiply-add counted as 2, as the float probe counts an FMA). For the benchmark.
@inline(never) public func int8ThroughputProbe(iterations: Int, seed: Int32) -> Int32 {
    int8AttentionSupported ? diffattn_int8_throughput_avx2(Int64(iterations), seed) : 0
}
