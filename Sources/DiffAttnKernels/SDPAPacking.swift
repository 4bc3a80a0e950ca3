// Keys and values gathered into dense rows before the tiles run.
//
// Every 64-row query tile streams all of its head's keys and values, so a head's K and V are read
// once per tile. Laid out as diffusers hands them over — (B, N, H, D) viewed as (B, H, N, D), a
// token stride of H·D — each key row of a head sits in its own cache lines, apart from its
// neighbours, and streaming them costs ~25% of a self-attention's time (SD1.5: 2×8 heads × 4096
// tokens × 40 channels, 0.52 s strided against 0.41 s dense on a Zen 3; torch's SDPA loses as
// much). One gathering pass, shared by all of a head's tiles, is a few milliseconds. Only the
// layout changes: every product and sum is the same, so results stay bitwise equal.
import DiffAttnKernelBodies

/// A dense copy of the problem's keys and values, or nil when they are dense already, when no
/// head has two tiles to share the copy, or when the memory is not there (then the tiles read the
/// caller's layout in place, as before: slower, never wrong). Free it after the tiles ran.
final class PackedKeysValues {
    private let base: UnsafeMutablePointer<Float>, floats: Int

    private init(base: UnsafeMutablePointer<Float>, floats: Int) { self.base = base; self.floats = floats }
    deinit { KernelScratch.free(base, floats: floats) }

    /// Points `problem.key` / `problem.value` at the copy when one is made.
    static func make(for problem: inout SDPAProblem) -> PackedKeysValues? {
        let p = problem
        guard p.key.format == .float32, p.queryLength > TileGeometry.lanes, p.keyLength > 0 else { return nil }
        let k = p.key.strides, v = p.value.strides
        let kDense = k.channel == 1 && k.token == p.headDim, vDense = v.channel == 1 && v.token == p.valueDim
        guard !(kDense && vDense) else { return nil }
        // A broadcast (stride 0) batch or head axis stays broadcast in the copy.
        let batches = k.batch == 0 && v.batch == 0 ? 1 : p.batch
        let heads = k.head == 0 && v.head == 0 ? 1 : p.keyValueHeads
        let keyFloats = p.keyLength * p.headDim, valueFloats = p.keyLength * p.valueDim
        // Counted scratch (KernelScratch), so the benchmark's peak extra memory includes it.
        let (floats, overflow) = (keyFloats + valueFloats).multipliedReportingOverflow(by: batches * heads)
        guard !overflow, floats > 0, let dst = KernelScratch.tryAllocate(floats: floats) else { return nil }
        let src = (key: p.key.data, value: p.value.data)
        Parallel.forEach(batches * heads) { i in
            let b = i / heads, h = i % heads
            let out = dst + i * (keyFloats + valueFloats)
            gather(src.key + b * k.batch + h * k.head, k, rows: p.keyLength, width: p.headDim, into: out)
            gather(src.value + b * v.batch + h * v.head, v, rows: p.keyLength, width: p.valueDim, into: out + keyFloats)
        }
        let stride = keyFloats + valueFloats
        let bStride = batches == 1 ? 0 : heads * stride, hStride = heads == 1 ? 0 : stride
        problem.key = SDPAOperand(data: dst, strides: Strides4(batch: bStride, head: hStride, token: p.headDim, channel: 1))
        problem.value = SDPAOperand(data: dst + keyFloats,
                                    strides: Strides4(batch: bStride, head: hStride, token: p.valueDim, channel: 1))
        return PackedKeysValues(base: dst, floats: floats)
    }

    private static func gather(_ src: UnsafePointer<Float>, _ s: Strides4, rows: Int, width: Int,
                               into dst: UnsafeMutablePointer<Float>) {
        for j in 0..<rows {
            let row = src + j * s.token, out = dst + j * width
            if s.channel == 1 {
                out.update(from: row, count: width)
            } else {
                for c in 0..<width { out[c] = row[c * s.channel] }
            }
        }
    }
}
