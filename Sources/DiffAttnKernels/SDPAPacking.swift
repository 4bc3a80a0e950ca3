// Keys and values copied once per call before the tiles run, shared by all of a head's tiles.
//
// Every 64-row query tile streams all of its head's keys and values. Laid out as diffusers hands
// them over — (B, N, H, D) viewed as (B, H, N, D), a token stride of H·D — each key row of a head
// sits in its own cache lines, apart from its neighbours, and streaming them costs ~25% of a
// self-attention's time (SD1.5: 2×8 heads × 4096 tokens × 40 channels, 0.52 s strided against
// 0.41 s dense on a Zen 3; torch's SDPA loses as much). The narrow (AVX2, portable) kernels go
// further: they broadcast 6 keys per channel and 6 value channels per key, and read from rows
// one cache line apart those broadcasts wait on L2 — at 128 channels a head's block of keys or
// values (48 KB) no longer fits L1 beside the tile. So for them the copy is in `KernelLayout`,
// where each broadcast group is one contiguous read, streamed in order. One pass, shared by all of
// a head's tiles, is a few milliseconds. Only the layout changes: every product and sum is the
// same, so results stay bitwise equal.
import DiffAttnKernelBodies

/// A copy of the problem's keys and values, or nil when no head has two tiles to share it or the
/// memory is not there (then the tiles read the caller's layout in place, as before: slower, never
/// wrong). `kernelLayout`: in `KernelLayout` (the narrow kernels: K and V stream from L2 in order,
/// where a 128-channel head's plain rows, one cache line per key and broadcast, left the value
/// kernel waiting on loads); otherwise dense rows, and only when the caller's are not dense already.
/// Free it after the tiles ran.
final class PackedKeysValues {
    private let base: UnsafeMutablePointer<Float>, floats: Int
    /// Per (batch, key/value head) of the copy: where its keys and values start.
    let batchStride: Int, headStride: Int, valueOffset: Int
    let kernelLayout: Bool

    private init(base: UnsafeMutablePointer<Float>, floats: Int, batchStride: Int, headStride: Int,
                 valueOffset: Int, kernelLayout: Bool) {
        self.base = base; self.floats = floats; self.batchStride = batchStride; self.headStride = headStride
        self.valueOffset = valueOffset; self.kernelLayout = kernelLayout
    }
    deinit { KernelScratch.free(base, floats: floats) }

    /// Points `problem.key` / `problem.value` at the copy when one is made (in the kernel layout,
    /// at its first head: tiles add `batchStride` / `headStride` and set `AttentionTile.packed`).
    static func make(for problem: inout SDPAProblem, kernelLayout: Bool) -> PackedKeysValues? {
        let p = problem
        guard p.key.format == .float32, p.queryLength > TileGeometry.lanes, p.keyLength > 0 else { return nil }
        let k = p.key.strides, v = p.value.strides
        let kDense = k.channel == 1 && k.token == p.headDim, vDense = v.channel == 1 && v.token == p.valueDim
        guard kernelLayout || !(kDense && vDense) else { return nil }
        // A broadcast (stride 0) batch or head axis stays broadcast in the copy.
        let batches = k.batch == 0 && v.batch == 0 ? 1 : p.batch
        let heads = k.head == 0 && v.head == 0 ? 1 : p.keyValueHeads
        let keyFloats = kernelLayout ? KernelLayout.keyFloats(keyLength: p.keyLength, headDim: p.headDim)
                                     : p.keyLength * p.headDim
        let valueFloats = kernelLayout ? KernelLayout.valueFloats(keyLength: p.keyLength, valueDim: p.valueDim)
                                       : p.keyLength * p.valueDim
        // Counted scratch (KernelScratch), so the benchmark's peak extra memory includes it.
        let (floats, overflow) = (keyFloats + valueFloats).multipliedReportingOverflow(by: batches * heads)
        guard !overflow, floats > 0, let dst = KernelScratch.tryAllocate(floats: floats) else { return nil }
        let src = (key: p.key.data, value: p.value.data)
        Parallel.forEach(batches * heads) { i in
            let b = i / heads, h = i % heads
            let out = dst + i * (keyFloats + valueFloats)
            let key = src.key + b * k.batch + h * k.head, value = src.value + b * v.batch + h * v.head
            if kernelLayout {
                interleaveKeys(key, k, rows: p.keyLength, width: p.headDim, into: out)
                interleaveValues(value, v, rows: p.keyLength, width: p.valueDim, into: out + keyFloats)
            } else {
                gather(key, k, rows: p.keyLength, width: p.headDim, into: out)
                gather(value, v, rows: p.keyLength, width: p.valueDim, into: out + keyFloats)
            }
        }
        let stride = keyFloats + valueFloats
        let bStride = batches == 1 ? 0 : heads * stride, hStride = heads == 1 ? 0 : stride
        problem.key = SDPAOperand(data: dst, strides: Strides4(batch: bStride, head: hStride, token: p.headDim, channel: 1))
        problem.value = SDPAOperand(data: dst + keyFloats,
                                    strides: Strides4(batch: bStride, head: hStride, token: p.valueDim, channel: 1))
        return PackedKeysValues(base: dst, floats: floats, batchStride: bStride, headStride: hStride,
                                valueOffset: keyFloats, kernelLayout: kernelLayout)
    }

    /// `KernelLayout` keys: `[group][d][6]`, rows past the last key repeating it.
    private static func interleaveKeys(_ src: UnsafePointer<Float>, _ s: Strides4, rows: Int, width: Int,
                                       into dst: UnsafeMutablePointer<Float>) {
        let g = KernelLayout.keyGroup
        var out = dst, first = 0
        while first < rows {
            for r in 0..<g {
                let row = src + min(first + r, rows - 1) * s.token, o = out + r
                if s.channel == 1 {
                    for d in 0..<width { o[d * g] = row[d] }
                } else {
                    for d in 0..<width { o[d * g] = row[d * s.channel] }
                }
            }
            out += g * width; first += g
        }
    }

    /// `KernelLayout` values: `[group][key][6]`, channels past the last repeating it.
    private static func interleaveValues(_ src: UnsafePointer<Float>, _ s: Strides4, rows: Int, width: Int,
                                         into dst: UnsafeMutablePointer<Float>) {
        let g = KernelLayout.channelGroup, last = width - 1
        var out = dst, c = 0
        while c < width {
            let o = (c * s.channel, min(c + 1, last) * s.channel, min(c + 2, last) * s.channel,
                     min(c + 3, last) * s.channel, min(c + 4, last) * s.channel, min(c + 5, last) * s.channel)
            var row = src
            for _ in 0..<rows {
                out[0] = row[o.0]; out[1] = row[o.1]; out[2] = row[o.2]
                out[3] = row[o.3]; out[4] = row[o.4]; out[5] = row[o.5]
                out += g; row += s.token
            }
            c += g
        }
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
