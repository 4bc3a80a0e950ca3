// Ring attention (diffusers: attention_dispatch.py:TemplatedRingAttention) with point-to-point
// rotation: at step i a rank holds the K/V block of ring rank (r − i) mod R; it posts the send of
// that block to r + 1 and the receive of the next one from r − 1 before computing, so the transfer
// overlaps the step's attention. Partials merge by log-sum-exp in fp32 in a fixed order (bitwise
// repeatable for a given R, U).
import DiffAttnKernels

extension ContextParallelCall {
    func ringAttention(query: SDPAOperand, ownBlock: FloatBuffer, output: UnsafeMutablePointer<Float>,
                       outputStrides: Strides4) throws {
        let me = ringGroup.firstIndex(of: comm.rank)!
        let next = ringGroup[(me + 1) % ring], previous = ringGroup[(me + ring - 1) % ring]
        let rows = s.batch * headsHere * gatheredQueries
        let lse = try FloatBuffer(count: rows, what: "the ring's log-sum-exp")
        let partialLSE = try FloatBuffer(count: rows, what: "a ring step's log-sum-exp")
        let partial = try FloatBuffer(count: rows * s.valueDim, what: "a ring step's output")
        let spare = try FloatBuffer(count: blockFloats, what: "the ring's second K/V block")
        let partialStrides = Strides4.contiguous(heads: headsHere, tokens: gatheredQueries, channels: s.valueDim)
        let lseLayout = LogSumExpOutput(data: lse.pointer, heads: headsHere, tokens: gatheredQueries)
        let partialLayout = LogSumExpOutput(data: partialLSE.pointer, heads: headsHere, tokens: gatheredQueries)
        var current = ownBlock, incoming = spare
        let bytes = blockFloats * MemoryLayout<Float>.stride
        for step in 0..<ring {
            var pending: PendingExchange?
            if step < ring - 1 {
                let tag = comm.nextTag()
                pending = try comm.post(sends: [Transfer(peer: next, bytes: bytes, buffer: UnsafeMutableRawPointer(current.pointer))],
                                        receives: [Transfer(peer: previous, bytes: bytes, buffer: UnsafeMutableRawPointer(incoming.pointer))],
                                        tag: tag)
            }
            if step == 0 {
                scaledDotProductAttention(problem(query: query, block: current.pointer, output: output, outputStrides: outputStrides),
                                          algorithm: .flash, logSumExp: lseLayout)
            } else {
                scaledDotProductAttention(problem(query: query, block: current.pointer, output: partial.pointer,
                                                  outputStrides: partialStrides), algorithm: .flash, logSumExp: partialLayout)
                mergeAttentionPartial(batch: s.batch, heads: headsHere, rows: gatheredQueries, valueDim: s.valueDim,
                                      out: output, outStrides: outputStrides, lse: lseLayout,
                                      partialOut: partial.pointer, partialOutStrides: partialStrides,
                                      partialLSE: partialLSE.pointer,
                                      partialLSEStrides: (headsHere * gatheredQueries, gatheredQueries, 1))
            }
            if let pending { try comm.wait(pending) }
            swap(&current, &incoming)
        }
    }
}
