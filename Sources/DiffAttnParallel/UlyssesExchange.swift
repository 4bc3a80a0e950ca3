// Ulysses (diffusers: attention_dispatch.py:TemplatedUlyssesAttention): inside a group of U ranks,
// one all-to-all turns "all heads of my 1/U of the tokens" into "1/U of the heads of all the
// group's tokens" (q, k, v and the key mask in one message per peer), and a second one turns the
// output back. Received chunk j holds tokens [j·n, (j+1)·n) of the gathered sequence: the group's
// chunks in rank order, which is what ring then treats as this group's block.
import DiffAttnKernels

extension ContextParallelCall {
    /// Floats sent to each peer by the first exchange.
    private var scatterFloats: Int {
        s.batch * (headsHere * s.queryLength * s.headDim + kvHeadsHere * s.keyLength * (s.headDim + s.valueDim))
            + (hasMask ? s.batch * s.keyLength : 0)
    }

    /// Head group j of local q, k, v (+ the whole local mask) to group rank j; fills `query`
    /// (B, H/U, Nq·U, D) and the K/V block with what comes back.
    func ulyssesScatterHeads(block: FloatBuffer, query: FloatBuffer) throws {
        let per = scatterFloats, (b, n, nk, d, dv) = (s.batch, s.queryLength, s.keyLength, s.headDim, s.valueDim)
        let (hl, kl) = (headsHere, kvHeadsHere)
        let send = try FloatBuffer(count: per * ulysses, what: "the Ulysses send buffer")
        let receive = try FloatBuffer(count: per * ulysses, what: "the Ulysses receive buffer")
        let qPart = Strides4.contiguous(heads: hl, tokens: n, channels: d)
        let kPart = Strides4.contiguous(heads: kl, tokens: nk, channels: d)
        let vPart = Strides4.contiguous(heads: kl, tokens: nk, channels: dv)
        let kOffset = b * hl * n * d, vOffset = kOffset + b * kl * nk * d, mOffset = vOffset + b * kl * nk * dv
        for j in 0..<ulysses {
            let slot = send.pointer + j * per
            copyBlock(s.query.offset(head: j * hl).data, s.query.strides, slot, qPart, batch: b, heads: hl, tokens: n, channels: d)
            copyBlock(s.key.offset(head: j * kl).data, s.key.strides, slot + kOffset, kPart, batch: b, heads: kl, tokens: nk, channels: d)
            copyBlock(s.value.offset(head: j * kl).data, s.value.strides, slot + vOffset, vPart, batch: b, heads: kl, tokens: nk, channels: dv)
            if hasMask { s.keyMask.write(batch: b, keys: nk, to: slot + mOffset, batchStride: nk) }
        }
        try comm.allToAll(group: ulyssesGroup, send: send.pointer, receive: receive.pointer, blockBytes: per * 4)
        let qAll = Strides4.contiguous(heads: hl, tokens: gatheredQueries, channels: d)
        for j in 0..<ulysses {
            let slot = UnsafePointer(receive.pointer + j * per)
            copyBlock(slot, qPart, query.pointer + j * n * d, qAll, batch: b, heads: hl, tokens: n, channels: d)
            copyBlock(slot + kOffset, kPart, block.pointer + j * nk * d, keyStrides, batch: b, heads: kl, tokens: nk, channels: d)
            copyBlock(slot + vOffset, vPart, block.pointer + valueOffset + j * nk * dv, valueStrides,
                      batch: b, heads: kl, tokens: nk, channels: dv)
            if hasMask {
                for bb in 0..<b {
                    (block.pointer + maskOffset + bb * gatheredKeys + j * nk).update(from: slot + mOffset + bb * nk, count: nk)
                }
            }
        }
    }

    /// The reverse exchange: token chunk j of the gathered output (B, H/U, Nq·U, Dv) to group rank j;
    /// head group j of this rank's tokens comes back from it into the caller's output.
    func ulyssesGatherHeads(output: FloatBuffer) throws {
        let (b, n, dv, hl) = (s.batch, s.queryLength, s.valueDim, headsHere)
        let per = b * hl * n * dv
        let send = try FloatBuffer(count: per * ulysses, what: "the Ulysses send buffer")
        let receive = try FloatBuffer(count: per * ulysses, what: "the Ulysses receive buffer")
        let part = Strides4.contiguous(heads: hl, tokens: n, channels: dv)
        let all = Strides4.contiguous(heads: hl, tokens: gatheredQueries, channels: dv)
        for j in 0..<ulysses {
            copyBlock(output.pointer + j * n * dv, all, send.pointer + j * per, part, batch: b, heads: hl, tokens: n, channels: dv)
        }
        try comm.allToAll(group: ulyssesGroup, send: send.pointer, receive: receive.pointer, blockBytes: per * 4)
        for j in 0..<ulysses {
            copyBlock(receive.pointer + j * per, part, s.output + j * hl * s.outputStrides.head, s.outputStrides,
                      batch: b, heads: hl, tokens: n, channels: dv)
        }
    }
}
