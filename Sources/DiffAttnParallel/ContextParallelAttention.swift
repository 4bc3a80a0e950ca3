// Context-parallel attention: ring, Ulysses, and unified (a ring of Ulysses groups), as diffusers
// defines them (models/attention_dispatch.py: TemplatedRingAttention, TemplatedUlyssesAttention,
// _templated_unified_attention), with two deliberate differences (docs/parallel.md): the ring moves
// K/V blocks point-to-point while the current block computes (not one all-gather), and each key's
// padding mask travels with its key block (diffusers applies the local mask to every remote block).
import DiffAttnKernels

/// Runs one attention call across the ranks of `comm`. Every rank calls it with its own shard
/// (`.failure` for a rank whose inputs were already found bad: it still takes part in the one
/// validation exchange, so every rank throws the same error instead of waiting). Throws
/// `ParallelError` on every rank alike for a bad configuration or mismatched shards.
///
/// GQA (`keyValueHeads < heads`) works under ring and under Ulysses/unified when both head counts
/// divide by the Ulysses degree.
public func contextParallelAttention(_ shard: Result<ShardedAttention, ParallelError>,
                                     config: ContextParallelConfig, comm: Communicator) throws {
    switch shard {
    case let .failure(error):
        try comm.agree(on: CallDescriptor(error: error, config: config))
        throw error   // not reached: validation reports the failure on every rank
    case let .success(s):
        try comm.agree(on: CallDescriptor(s, config: config))
        guard s.batch > 0, s.heads > 0, s.queryLength > 0, s.valueDim > 0 else { return }
        try ContextParallelCall(s, config: config, comm: comm).run()
    }
}

/// One call's geometry: the Ulysses group (U consecutive ranks) and the ring group (ranks with
/// equal g mod U), and the gathered sizes after the Ulysses exchange.
struct ContextParallelCall {
    let s: ShardedAttention, comm: Communicator
    let ring: Int, ulysses: Int, scale: Float
    let ulyssesGroup: [Int], ringGroup: [Int]
    var headsHere: Int { s.heads / ulysses }
    var kvHeadsHere: Int { s.keyValueHeads / ulysses }
    var gatheredQueries: Int { s.queryLength * ulysses }
    var gatheredKeys: Int { s.keyLength * ulysses }
    var hasMask: Bool { s.keyMask.code != 0 }

    init(_ s: ShardedAttention, config: ContextParallelConfig, comm: Communicator) {
        self.s = s; self.comm = comm
        ring = config.ringDegree; ulysses = config.ulyssesDegree
        scale = config.scale ?? Float(1 / Double(s.headDim).squareRoot())
        let g = comm.rank, u = config.ulyssesDegree, base = g / u * u
        ulyssesGroup = Array(base..<(base + u))
        ringGroup = (0..<config.ringDegree).map { $0 * u + g % u }
    }

    /// Floats of one K/V block as the ring moves it: K (B, Hkv/U, Nk·U, D), V (…, Dv), mask (B, Nk·U).
    var blockFloats: Int {
        s.batch * kvHeadsHere * gatheredKeys * (s.headDim + s.valueDim) + (hasMask ? s.batch * gatheredKeys : 0)
    }
    var keyStrides: Strides4 { .contiguous(heads: kvHeadsHere, tokens: gatheredKeys, channels: s.headDim) }
    var valueStrides: Strides4 { .contiguous(heads: kvHeadsHere, tokens: gatheredKeys, channels: s.valueDim) }
    var valueOffset: Int { s.batch * kvHeadsHere * gatheredKeys * s.headDim }
    var maskOffset: Int { valueOffset + s.batch * kvHeadsHere * gatheredKeys * s.valueDim }

    func run() throws {
        let block = try FloatBuffer(count: blockFloats, what: "the K/V block")
        if ulysses == 1 {
            // Sequence shards as they are: pack the local K/V (+ mask) into the block the ring moves.
            copyBlock(s.key.data, s.key.strides, block.pointer, keyStrides,
                      batch: s.batch, heads: s.keyValueHeads, tokens: s.keyLength, channels: s.headDim)
            copyBlock(s.value.data, s.value.strides, block.pointer + valueOffset, valueStrides,
                      batch: s.batch, heads: s.keyValueHeads, tokens: s.keyLength, channels: s.valueDim)
            if hasMask { s.keyMask.write(batch: s.batch, keys: s.keyLength, to: block.pointer + maskOffset, batchStride: s.keyLength) }
            try attend(query: s.query, block: block, output: s.output, outputStrides: s.outputStrides)
            return
        }
        let gatheredQuery = try FloatBuffer(count: s.batch * headsHere * gatheredQueries * s.headDim, what: "the gathered queries")
        try ulyssesScatterHeads(block: block, query: gatheredQuery)
        let qStrides = Strides4.contiguous(heads: headsHere, tokens: gatheredQueries, channels: s.headDim)
        let out = try FloatBuffer(count: s.batch * headsHere * gatheredQueries * s.valueDim, what: "the gathered output")
        let oStrides = Strides4.contiguous(heads: headsHere, tokens: gatheredQueries, channels: s.valueDim)
        try attend(query: SDPAOperand(data: gatheredQuery.pointer, strides: qStrides), block: block,
                   output: out.pointer, outputStrides: oStrides)
        try ulyssesGatherHeads(output: out)
    }

    /// Attention of `query` (B, H/U, Nq·U, D) against the group's keys: the local block alone, or
    /// every ring rank's block in turn.
    func attend(query: SDPAOperand, block: FloatBuffer, output: UnsafeMutablePointer<Float>, outputStrides: Strides4) throws {
        if ring == 1 {
            scaledDotProductAttention(problem(query: query, block: block.pointer, output: output, outputStrides: outputStrides),
                                      algorithm: .flash)
            return
        }
        try ringAttention(query: query, ownBlock: block, output: output, outputStrides: outputStrides)
    }

    func problem(query: SDPAOperand, block: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>,
                 outputStrides: Strides4) -> SDPAProblem {
        let mask: SDPAMask = hasMask
            ? .additive(UnsafePointer(block + maskOffset), Strides4(batch: gatheredKeys, head: 0, token: 0, channel: 1))
            : .none
        return SDPAProblem(batch: s.batch, queryHeads: headsHere, keyValueHeads: kvHeadsHere,
                           queryLength: gatheredQueries, keyLength: gatheredKeys, headDim: s.headDim, valueDim: s.valueDim,
                           query: query, key: SDPAOperand(data: block, strides: keyStrides),
                           value: SDPAOperand(data: block + valueOffset, strides: valueStrides),
                           output: output, outputStrides: outputStrides, mask: mask, scale: scale, fullyMaskedRows: .zero)
    }
}
