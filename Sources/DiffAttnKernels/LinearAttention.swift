// ReLU-kernel linear attention (Sana, EfficientViT):
//   out_n = Σ_m (φ(q_n)·φ(k_m)) v_m / (Σ_m φ(q_n)·φ(k_m) + eps),   φ = max(·, 0)
// evaluated in the linear-time order: per (batch, head) first A = Σ_m v'_m ⊗ φ(k_m) with
// v' = [v; 1] ((Dv+1) × D), then out_n = (A·φ(q_n))[:Dv] / ((A·φ(q_n))[Dv] + eps).

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

/// Runs the problem on the thread pool. Phase 1 builds, per (batch, head), the transposed summary
/// Aᵀ = Σ_m φ(k_m) ⊗ [v_m; 1] (D × (Dv+1)); tasks take blocks of heads so that each key row of the
/// usual (B, N, H·D) layout is read contiguously. Phase 2 gives each task a block of queries over
/// all heads: z = Σ_j φ(q_j)·Aᵀ[j, :] (contiguous multiply-adds), out = z[:Dv] / (z[Dv] + eps).
/// Results do not depend on the thread count.
public func reluLinearAttention(_ p: LinearAttentionProblem) {
    let d = p.headDim, dv = p.valueDim, pairs = p.batch * p.heads
    guard pairs > 0, p.queryLength > 0 else { return }
    let row = dv + 1, aSize = d * row
    let summaries = KernelScratch.allocate(floats: pairs * aSize)
    defer { KernelScratch.free(summaries, floats: pairs * aSize) }
    let relu = p.applyReLU
    let headBlock = 8, headBlocks = (p.heads + headBlock - 1) / headBlock
    Parallel.forEach(p.batch * headBlocks) { task in
        let b = task / headBlocks, h0 = task % headBlocks * headBlock, h1 = min(h0 + headBlock, p.heads)
        (summaries + (b * p.heads + h0) * aSize).initialize(repeating: 0, count: (h1 - h0) * aSize)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d + row) { buf in
            let k = buf.baseAddress!, v = k + d
            v[dv] = 1   // the row of ones appended to v
            for m in 0..<p.keyLength {
                for h in h0..<h1 {
                    let kp = p.key.data + b * p.key.strides.batch + h * p.key.strides.head + m * p.key.strides.token
                    let vp = p.value.data + b * p.value.strides.batch + h * p.value.strides.head + m * p.value.strides.token
                    gather(kp, p.key.strides.channel, d, relu, into: k)
                    gather(vp, p.value.strides.channel, dv, false, into: v)
                    let a = summaries + (b * p.heads + h) * aSize
                    for j in 0..<d where k[j] != 0 { axpy(a + j * row, k[j], v, row) }
                }
            }
        }
    }
    let block = 16
    let blocks = (p.queryLength + block - 1) / block
    Parallel.forEach(p.batch * blocks) { task in
        let b = task / blocks, n0 = task % blocks * block
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d + row) { buf in
            let q = buf.baseAddress!, z = q + d
            for n in n0..<min(n0 + block, p.queryLength) {
                for h in 0..<p.heads {
                    let qp = p.query.data + b * p.query.strides.batch + h * p.query.strides.head + n * p.query.strides.token
                    gather(qp, p.query.strides.channel, d, relu, into: q)
                    let a = summaries + (b * p.heads + h) * aSize
                    z.initialize(repeating: 0, count: row)
                    for j in 0..<d where q[j] != 0 { axpy(z, q[j], a + j * row, row) }
                    let denominator = z[dv] + p.eps
                    let op = p.output + b * p.outputStrides.batch + h * p.outputStrides.head + n * p.outputStrides.token
                    for i in 0..<dv { op[i * p.outputStrides.channel] = z[i] / denominator }
                }
            }
        }
    }
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

/// y += alpha · x over n contiguous floats, 16 lanes at a time.
@inline(__always)
func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    var j = 0
    let av = SIMD16<Float>(repeating: alpha)
    while j + 16 <= n {
        let yv = UnsafeRawPointer(y + j).loadUnaligned(as: SIMD16<Float>.self)
        let xv = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(y + j).storeBytes(of: yv + av * xv, as: SIMD16<Float>.self)
        j += 16
    }
    while j < n { y[j] += alpha * x[j]; j += 1 }
}
