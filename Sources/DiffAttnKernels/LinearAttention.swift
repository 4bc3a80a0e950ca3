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

/// Runs the problem on the thread pool: one task per (batch, head) builds A, then query blocks
/// of every head are spread over the workers. Results do not depend on the thread count.
public func reluLinearAttention(_ p: LinearAttentionProblem) {
    let d = p.headDim, dv = p.valueDim, pairs = p.batch * p.heads
    guard pairs > 0, p.queryLength > 0 else { return }
    let aSize = (dv + 1) * d
    let summaries = KernelScratch.allocate(floats: pairs * aSize)
    defer { KernelScratch.free(summaries, floats: pairs * aSize) }
    let relu = p.applyReLU
    Parallel.forEach(pairs) { task in
        let b = task / p.heads, h = task % p.heads
        let a = summaries + task * aSize
        a.initialize(repeating: 0, count: aSize)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d) { kRow in
            let k = kRow.baseAddress!
            for m in 0..<p.keyLength {
                let kp = p.key.data + b * p.key.strides.batch + h * p.key.strides.head + m * p.key.strides.token
                for j in 0..<d {
                    let x = kp[j * p.key.strides.channel]
                    k[j] = relu ? max(x, 0) : x
                }
                let vp = p.value.data + b * p.value.strides.batch + h * p.value.strides.head + m * p.value.strides.token
                for i in 0..<dv { axpy(a + i * d, vp[i * p.value.strides.channel], k, d) }
                axpy(a + dv * d, 1, k, d)   // the row of ones appended to v
            }
        }
    }
    let block = 32
    let blocks = (p.queryLength + block - 1) / block
    Parallel.forEach(pairs * blocks) { task in
        let pair = task / blocks, n0 = task % blocks * block
        let b = pair / p.heads, h = pair % p.heads
        let a = summaries + pair * aSize
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d + dv + 1) { buf in
            let q = buf.baseAddress!, z = q + d
            for n in n0..<min(n0 + block, p.queryLength) {
                let qp = p.query.data + b * p.query.strides.batch + h * p.query.strides.head + n * p.query.strides.token
                for j in 0..<d {
                    let x = qp[j * p.query.strides.channel]
                    q[j] = relu ? max(x, 0) : x
                }
                for i in 0...dv { z[i] = dot(a + i * d, q, d) }
                let denominator = z[dv] + p.eps
                let op = p.output + b * p.outputStrides.batch + h * p.outputStrides.head + n * p.outputStrides.token
                for i in 0..<dv { op[i * p.outputStrides.channel] = z[i] / denominator }
            }
        }
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

/// Σ x·y over n contiguous floats, 16 lanes at a time.
@inline(__always)
func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    var j = 0
    var acc = SIMD16<Float>(repeating: 0)
    while j + 16 <= n {
        acc += UnsafeRawPointer(x + j).loadUnaligned(as: SIMD16<Float>.self)
            * UnsafeRawPointer(y + j).loadUnaligned(as: SIMD16<Float>.self)
        j += 16
    }
    var s = acc.sum()
    while j < n { s += x[j] * y[j]; j += 1 }
    return s
}
