// ReLU-kernel linear attention (Sana, EfficientViT):
//   out_n = Σ_m (φ(q_n)·φ(k_m)) v_m / (Σ_m φ(q_n)·φ(k_m) + eps),   φ = max(·, 0)
// evaluated in the linear-time order: per (batch, head) first A = Σ_m v'_m ⊗ φ(k_m) with
// v' = [v; 1] ((Dv+1) × D), then out_n = (A·φ(q_n))[:Dv] / ((A·φ(q_n))[Dv] + eps).

import DiffAttnKernelBodies

/// One linear-attention problem over strided (batch, head, token, channel) operands.
public struct LinearAttentionProblem {
    public var batch: Int, heads: Int, queryLength: Int, keyLength: Int, headDim: Int, valueDim: Int
    public var query: SDPAOperand, key: SDPAOperand, value: SDPAOperand
    public var output: UnsafeMutablePointer<Float>
    public var outputStrides: Strides4
    public var eps: Float
    /// Applies φ to queries and keys (false when the caller already did).
    public var applyReLU: Bool

    public init(batch: Int, heads: Int, queryLength: Int, keyLength: Int, headDim: Int, valueDim: Int,
                query: SDPAOperand, key: SDPAOperand, value: SDPAOperand, output: UnsafeMutablePointer<Float>,
                outputStrides: Strides4, eps: Float, applyReLU: Bool = true) {
        self.batch = batch; self.heads = heads; self.queryLength = queryLength; self.keyLength = keyLength
        self.headDim = headDim; self.valueDim = valueDim
        self.query = query; self.key = key; self.value = value
        self.output = output; self.outputStrides = outputStrides
        self.eps = eps; self.applyReLU = applyReLU
    }
}

/// Runs the problem on the thread pool as two GEMMs per (batch, head). Phase 1 builds the summary
/// W = [V 1]ᵀ·φ(K) ((Dv+1) × D): φ(K) is copied once (its column sums are the row of ones), then one
/// single-threaded sgemm reads V in place through its token stride. Phase 2 takes blocks of 64
/// queries: z = φ(Q)·Wᵀ on the projection micro-kernel, out = z[:Dv] / (z[Dv] + eps). Tasks are fixed (batch, head[, block]) units,
/// so results do not depend on the thread count.
public func reluLinearAttention(_ p: LinearAttentionProblem) {
    let d = p.headDim, dv = p.valueDim, pairs = p.batch * p.heads
    guard pairs > 0, p.queryLength > 0 else { return }
    useSingleThreadedBLAS()
    let row = dv + 1, aSize = d * row
    let summaries = KernelScratch.allocate(floats: pairs * aSize)
    defer { KernelScratch.free(summaries, floats: pairs * aSize) }
    let relu = p.applyReLU
    // Phase 1 tasks: (batch, block of 8 heads), walking the keys in chunks of 256 tokens, so that
    // each token's rows of the block's heads are read as one contiguous run.
    let headBlock = 8, chunk = 256, headBlocks = (p.heads + headBlock - 1) / headBlock
    let keyScratch = ScratchSlots(floats: headBlock * chunk * (d + dv))
    Parallel.forEachWorker(p.batch * headBlocks) { task, worker in
        let b = task / headBlocks, h0 = task % headBlocks * headBlock, h1 = min(h0 + headBlock, p.heads)
        let kbuf = keyScratch.buffer(for: worker), vbuf = kbuf + headBlock * chunk * d
        let ks = p.key.strides, vs = p.value.strides
        for h in h0..<h1 { (summaries + (b * p.heads + h) * aSize + dv * d).initialize(repeating: 0, count: d) }
        var m0 = 0
        while m0 < p.keyLength {
            let count = min(chunk, p.keyLength - m0)
            for m in 0..<count {
                for h in h0..<h1 {
                    let km = kbuf + ((h - h0) * chunk + m) * d
                    gather(p.key.data + b * ks.batch + h * ks.head + (m0 + m) * ks.token, ks.channel, d, relu, into: km)
                    gather(p.value.data + b * vs.batch + h * vs.head + (m0 + m) * vs.token, vs.channel, dv, false,
                           into: vbuf + ((h - h0) * chunk + m) * dv)
                }
            }
            for h in h0..<h1 {
                let a = summaries + (b * p.heads + h) * aSize, kh = kbuf + (h - h0) * chunk * d
                for m in 0..<count { addRow(a + dv * d, kh + m * d, d) }
                sgemm(transposeA: true, transposeB: false, m: dv, n: d, k: count, alpha: 1,
                      a: vbuf + (h - h0) * chunk * dv, lda: dv, b: kh, ldb: d, beta: m0 == 0 ? 0 : 1, c: a, ldc: d)
            }
            m0 += count
        }
    }
    withExtendedLifetime(keyScratch) {}
    let block = LinearGeometry.lanes
    let blocks = (p.queryLength + block - 1) / block
    let queryScratch = ScratchSlots(floats: block * (d + row) + LinearGeometry.scratchFloats)
    Parallel.forEachWorker(pairs * blocks) { task, worker in
        // Heads vary fastest: neighbouring tasks read neighbouring parts of the same token rows.
        let h = task % p.heads, n0 = task / p.heads % blocks * block, b = task / p.heads / blocks
        let pair = b * p.heads + h, count = min(block, p.queryLength - n0)
        let qbuf = queryScratch.buffer(for: worker), z = qbuf + block * d
        let qs = p.query.strides, os = p.outputStrides
        for n in 0..<count {
            gather(p.query.data + b * qs.batch + h * qs.head + (n0 + n) * qs.token, qs.channel, d, relu, into: qbuf + n * d)
        }
        linearTile(qbuf, rows: count, inFeatures: d, weight: summaries + pair * aSize, outFeatures: row,
                   into: z, scratch: z + block * row)
        for n in 0..<count {
            let zn = z + n * row, denominator = zn[dv] + p.eps
            let op = p.output + b * os.batch + h * os.head + (n0 + n) * os.token
            if os.channel == 1 {
                var i = 0
                let dn = SIMD16<Float>(repeating: denominator)
                while i + 16 <= dv {
                    let zv = UnsafeRawPointer(zn + i).loadUnaligned(as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(op + i).storeBytes(of: zv / dn, as: SIMD16<Float>.self)
                    i += 16
                }
                while i < dv { op[i] = zn[i] / denominator; i += 1 }
            } else {
                for i in 0..<dv { op[i * os.channel] = zn[i] / denominator }
            }
        }
    }
    withExtendedLifetime(queryScratch) {}
}

/// y += x over n floats (the running column sums of φ(K)).
@inline(__always)
private func addRow(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
    var j = 0
    while j + 16 <= n {
        let yv = UnsafeRawPointer(y + j).loadUnaligned(as: SIMD16<Float>.self)
        let xv = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(y + j).storeBytes(of: yv + xv, as: SIMD16<Float>.self)
        j += 16
    }
    while j < n { y[j] += x[j]; j += 1 }
}

/// Copies `n` floats `stride` apart into `out`, optionally through φ = max(·, 0).
@inline(__always)
private func gather(_ src: UnsafePointer<Float>, _ stride: Int, _ n: Int, _ relu: Bool, into out: UnsafeMutablePointer<Float>) {
    if stride == 1 {
        if relu { for j in 0..<n { out[j] = max(src[j], 0) } } else { out.update(from: src, count: n) }
    } else {
        for j in 0..<n { out[j] = relu ? max(src[j * stride], 0) : src[j * stride] }
    }
}
