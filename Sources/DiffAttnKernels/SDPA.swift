// Scaled dot-product attention with torch's semantics, split into tiles of 64 query rows of one
// (batch, head) and run on the thread pool. Tile maths lives in DiffAttnKernelBodies
// (AttentionTile.swift); this file maps a problem onto tiles and picks the ISA build.
import DiffAttnKernelBodies

/// `out = softmax(scale · Q·Kᵀ + mask) · V` for every batch and query head, like torch's
/// `F.scaled_dot_product_attention` (dropout 0) in float32.
///
/// - `.math` computes `mask + scale·(Q·Kᵀ)` for all keys of a tile, the classic softmax, then `·V`
///   (diffusers' `baddbmm`-softmax-`bmm` order); `.flash` uses an online softmax over blocks of keys
///   and never holds more than a block of scores.
/// - Rows whose every key is removed give NaN or zeros per `problem.fullyMaskedRows`.
/// - Results are bitwise identical for any `Parallel.threadCount`.
/// - Preconditions (the C boundary validates them): non-negative sizes, `queryHeads` a multiple of
///   `keyValueHeads`, pointers valid for every element the strides reach.
/// - `logSumExp`: also write each row's natural-log log-sum-exp of the scaled, masked scores (fp32).
///   It forces the flash path (whose online softmax keeps the running max and sum) and zero rows
///   for every key removed, whose log-sum-exp is -inf — what merging partial results needs
///   (`mergeAttentionPartial`, docs/parallel.md).
public func scaledDotProductAttention(_ problem: SDPAProblem, algorithm: SDPAAlgorithm,
                                      logSumExp: LogSumExpOutput? = nil) {
    var p = problem
    if logSumExp != nil { p.fullyMaskedRows = .zero }
    precondition(p.batch >= 0 && p.queryHeads >= 0 && p.queryLength >= 0 && p.keyLength >= 0
                 && p.headDim >= 0 && p.valueDim >= 0, "negative attention size")
    guard p.batch > 0, p.queryHeads > 0, p.queryLength > 0, p.valueDim > 0 else { return }
    precondition(p.keyValueHeads > 0 && p.queryHeads % p.keyValueHeads == 0,
                 "queryHeads must be a multiple of keyValueHeads")
    precondition(p.query.format == p.key.format && p.key.format == p.value.format,
                 "query, key and value must share one element format")
    if p.precision == .int8 {
        precondition(logSumExp == nil, "the int8 path returns no log-sum-exp")
        scaledDotProductAttentionInt8(p)
        return
    }
    let mode: TileMode = algorithm == .flash || logSumExp != nil ? .flash : .math
    // SDPAPacking.swift: K/V gathered once for all of a head's tiles — into the kernels' own
    // layout for the narrow (AVX2, portable) tiles, into dense rows for strided input otherwise.
    let packed = PackedKeysValues.make(for: &p, kernelLayout: KernelPath.selected != .avx512)
    defer { withExtendedLifetime(packed) {} }
    let group = p.queryHeads / p.keyValueHeads
    let bf16 = p.query.format == .bfloat16, outputElement = p.outputFormat == .bfloat16 ? 2 : 4
    runTiles(batch: p.batch, heads: p.queryHeads, queryLength: p.queryLength, keyLength: p.keyLength,
             headDim: p.headDim, valueDim: p.valueDim, mode: mode, sharedMaskRows: p.mask.sharedAcrossHeads,
             bfloat16: bf16) {
        b, h, firstRow, rows, scratch in
        let kvHead = h / group
        let q = p.query.strides, k = p.key.strides, v = p.value.strides, o = p.outputStrides
        let outputOffset = (b * o.batch + h * o.head + firstRow * o.token) * outputElement
        var tile = AttentionTile(
            query: p.query.advanced(by: b * q.batch + h * q.head + firstRow * q.token),
            queryTokenStride: q.token, queryChannelStride: q.channel,
            key: p.key.advanced(by: b * k.batch + kvHead * k.head), keyTokenStride: k.token, keyChannelStride: k.channel,
            value: p.value.advanced(by: b * v.batch + kvHead * v.head), valueTokenStride: v.token,
            valueChannelStride: v.channel,
            output: (UnsafeMutableRawPointer(p.output) + outputOffset).assumingMemoryBound(to: Float.self),
            outputTokenStride: o.token, outputChannelStride: o.channel,
            maskKind: 0, additiveMask: nil, booleanMask: nil, maskTokenStride: 0, maskChannelStride: 0,
            rows: rows, firstRow: firstRow, keyLength: p.keyLength, headDim: p.headDim, valueDim: p.valueDim,
            scale: p.scale, isCausal: p.isCausal, fullyMaskedGiveNaN: p.fullyMaskedRows == .nan,
            mode: mode, scratch: scratch)
        tile.packed = packed?.kernelLayout ?? false
        tile.inputFormat = p.query.format.rawValue
        tile.outputFormat = p.outputFormat.rawValue
        attachMask(p.mask, to: &tile, batch: b, head: h, firstRow: firstRow)
        if let l = logSumExp {
            tile.lse = l.data + b * l.batchStride + h * l.headStride + firstRow * l.tokenStride
            tile.lseTokenStride = l.tokenStride
        }
        runAttentionTile(tile)
    }
}

/// The probabilities `softmax(mask + scale·Q·Kᵀ)` of shape (batch, heads, queryLength, keyLength),
/// written through `outputStrides` — the math path's first half, diffusers' `get_attention_scores`.
/// Rows whose every key is removed are NaN, as torch's softmax gives.
public func attentionProbabilities(query: SDPAOperand, key: SDPAOperand, batch: Int, heads: Int,
                                   queryLength: Int, keyLength: Int, headDim: Int, mask: SDPAMask,
                                   scale: Float, output: UnsafeMutablePointer<Float>, outputStrides: Strides4) {
    precondition(batch >= 0 && heads >= 0 && queryLength >= 0 && keyLength >= 0 && headDim >= 0,
                 "negative attention size")
    guard batch > 0, heads > 0, queryLength > 0, keyLength > 0 else { return }
    runTiles(batch: batch, heads: heads, queryLength: queryLength, keyLength: keyLength,
             headDim: headDim, valueDim: 0, mode: .probabilities, sharedMaskRows: mask.sharedAcrossHeads) {
        b, h, firstRow, rows, scratch in
        let q = query.strides, k = key.strides, o = outputStrides
        let keyBase = key.data + b * k.batch + h * k.head
        var tile = AttentionTile(
            query: query.data + b * q.batch + h * q.head + firstRow * q.token,
            queryTokenStride: q.token, queryChannelStride: q.channel,
            key: keyBase, keyTokenStride: k.token, keyChannelStride: k.channel,
            value: keyBase, valueTokenStride: 0, valueChannelStride: 0,
            output: output + b * o.batch + h * o.head + firstRow * o.token,
            outputTokenStride: o.token, outputChannelStride: o.channel,
            maskKind: 0, additiveMask: nil, booleanMask: nil, maskTokenStride: 0, maskChannelStride: 0,
            rows: rows, firstRow: firstRow, keyLength: keyLength, headDim: headDim, valueDim: 0,
            scale: scale, isCausal: false, fullyMaskedGiveNaN: true, mode: .probabilities, scratch: scratch)
        attachMask(mask, to: &tile, batch: b, head: h, firstRow: firstRow)
        runAttentionTile(tile)
    }
}

/// Softmax of each row in place (`exp(x − max) / Σ`, vectorised exp); an all `-inf` row gives NaN.
public func softmaxRowsInPlace(_ p: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int) {
    guard rows > 0, columns > 0 else { return }
    // Rows are independent; small matrices stay on the calling thread, large ones go out in
    // chunks of 32 rows.
    let chunk = 32
    if rows * columns < 1 << 16 || rows <= chunk {
        runSoftmaxRows(p, rows: rows, columns: columns, stride: stride)
        return
    }
    Parallel.forEach((rows + chunk - 1) / chunk) { c in
        runSoftmaxRows(p + c * chunk * stride, rows: min(chunk, rows - c * chunk), columns: columns, stride: stride)
    }
}

/// Runs `body(batch, head, firstRow, rows, scratch)` for every 64-row query tile, tiles of one head
/// next to each other so that the threads share that head's keys and values in cache. With
/// `sharedMaskRows` (a full (B, 1, L, S) mask) the tiles go in groups of 4 whose every head runs
/// before the next group: the group's mask rows are then read from memory once, not once per head
/// (a (B,1,4096,4096) mask is 64 MiB per batch element, re-read per head it bound flash to ~255 GFLOP/s).
/// Only the order changes, so results stay the same.
func runTiles(batch: Int, heads: Int, queryLength: Int, keyLength: Int, headDim: Int, valueDim: Int,
                      mode: TileMode, sharedMaskRows: Bool = false, bfloat16: Bool = false,
                      _ body: (Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void) {
    let lanes = TileGeometry.lanes
    let tilesPerHead = (queryLength + lanes - 1) / lanes
    let scratch = ScratchSlots(floats: TileGeometry.scratchFloats(mode: mode, headDim: headDim, valueDim: valueDim,
                                                                   keyLength: keyLength, bfloat16: bfloat16))
    let group = sharedMaskRows && heads > 1 ? 4 : tilesPerHead
    Parallel.forEachWorker(batch * heads * tilesPerHead) { task, worker in
        let perBatch = heads * tilesPerHead, b = task / perBatch, index = task % perBatch
        let g0 = index / (heads * group) * group, size = min(group, tilesPerHead - g0)
        let local = index - g0 * heads, head = local / size, tileIndex = g0 + local % size
        let firstRow = tileIndex * lanes
        body(b, head, firstRow, min(lanes, queryLength - firstRow), scratch.buffer(for: worker))
    }
    withExtendedLifetime(scratch) {}
}

extension SDPAMask {
    /// A mask whose rows vary along the query axis but not across heads.
    var sharedAcrossHeads: Bool {
        switch self {
        case .none: return false
        case let .additive(_, s), let .boolean(_, s): return s.head == 0 && s.token != 0
        }
    }
}

/// Points the tile at its rows of the mask.
func attachMask(_ mask: SDPAMask, to tile: inout AttentionTile, batch b: Int, head h: Int, firstRow: Int) {
    switch mask {
    case .none:
        break
    case let .additive(data, s):
        tile.maskKind = 1
        tile.additiveMask = data + b * s.batch + h * s.head + firstRow * s.token
        tile.maskTokenStride = s.token; tile.maskChannelStride = s.channel
    case let .boolean(data, s):
        tile.maskKind = 2
        tile.booleanMask = data + b * s.batch + h * s.head + firstRow * s.token
        tile.maskTokenStride = s.token; tile.maskChannelStride = s.channel
    }
}
