import DiffAttnKernels

/// A key-padding mask over this rank's keys, the same for every head and query: (batch, keys).
public enum KeyMask {
    case none
    /// Added to the scaled scores (0 keeps a key, -inf removes it).
    case additive(UnsafePointer<Float>, batchStride: Int, keyStride: Int)
    /// Non-zero byte = attend.
    case boolean(UnsafePointer<UInt8>, batchStride: Int, keyStride: Int)

    var code: Int64 {
        switch self { case .none: return 0; case .additive: return 1; case .boolean: return 2 }
    }

    /// Writes this rank's mask as additive floats (0 / -inf for booleans) into `dst` (batch, keys).
    func write(batch: Int, keys: Int, to dst: UnsafeMutablePointer<Float>, batchStride: Int) {
        for b in 0..<batch {
            for j in 0..<keys {
                switch self {
                case .none: dst[b * batchStride + j] = 0
                case let .additive(p, bs, ks): dst[b * batchStride + j] = p[b * bs + j * ks]
                case let .boolean(p, bs, ks): dst[b * batchStride + j] = p[b * bs + j * ks] != 0 ? 0 : -.infinity
                }
            }
        }
    }
}

/// This rank's shard of one attention call, in (batch, heads, tokens, channels) layout: rank g holds
/// sequence chunk g of the queries and of the keys/values, and receives chunk g of the output.
public struct ShardedAttention {
    public var batch: Int, heads: Int, keyValueHeads: Int
    public var queryLength: Int, keyLength: Int, headDim: Int, valueDim: Int
    public var query: SDPAOperand, key: SDPAOperand, value: SDPAOperand
    public var keyMask: KeyMask
    public var output: UnsafeMutablePointer<Float>, outputStrides: Strides4

    public init(batch: Int, heads: Int, keyValueHeads: Int, queryLength: Int, keyLength: Int, headDim: Int,
                valueDim: Int, query: SDPAOperand, key: SDPAOperand, value: SDPAOperand, keyMask: KeyMask = .none,
                output: UnsafeMutablePointer<Float>, outputStrides: Strides4) {
        self.batch = batch; self.heads = heads; self.keyValueHeads = keyValueHeads
        self.queryLength = queryLength; self.keyLength = keyLength; self.headDim = headDim; self.valueDim = valueDim
        self.query = query; self.key = key; self.value = value; self.keyMask = keyMask
        self.output = output; self.outputStrides = outputStrides
    }
}

/// diffusers' `ContextParallelConfig` degrees (models/_modeling_parallel.py): ranks form an
/// R × U grid, rank g at ring index g / U and Ulysses index g mod U.
public struct ContextParallelConfig: Sendable, Equatable {
    public var ringDegree: Int
    public var ulyssesDegree: Int
    /// nil: 1/sqrt(head_dim).
    public var scale: Float?
    public init(ringDegree: Int = 1, ulyssesDegree: Int = 1, scale: Float? = nil) {
        self.ringDegree = ringDegree; self.ulyssesDegree = ulyssesDegree; self.scale = scale
    }
}

/// Copies a (b, h, t, c) block between strided layouts.
func copyBlock(_ src: UnsafePointer<Float>, _ s: Strides4, _ dst: UnsafeMutablePointer<Float>, _ d: Strides4,
               batch: Int, heads: Int, tokens: Int, channels: Int) {
    for b in 0..<batch {
        for h in 0..<heads {
            for t in 0..<tokens {
                let from = src + b * s.batch + h * s.head + t * s.token
                let to = dst + b * d.batch + h * d.head + t * d.token
                if s.channel == 1 && d.channel == 1 {
                    to.update(from: from, count: channels)
                } else {
                    for c in 0..<channels { to[c * d.channel] = from[c * s.channel] }
                }
            }
        }
    }
}

extension SDPAOperand {
    /// The operand shifted to head `h` (and token `t`).
    func offset(head h: Int, token t: Int = 0) -> SDPAOperand {
        SDPAOperand(data: data + h * strides.head + t * strides.token, strides: strides)
    }
}
