/// Element strides of a rank-4 tensor laid out as (batch, head, token, channel).
/// A stride of 0 broadcasts that axis.
public struct Strides4: Equatable, Sendable {
    public var batch: Int, head: Int, token: Int, channel: Int
    public init(batch: Int, head: Int, token: Int, channel: Int) {
        self.batch = batch; self.head = head; self.token = token; self.channel = channel
    }
    /// Dense strides for shape (b, h, n, d).
    public static func contiguous(heads: Int, tokens: Int, channels: Int) -> Strides4 {
        Strides4(batch: heads * tokens * channels, head: tokens * channels, token: channels, channel: 1)
    }
}

/// How attention operands and outputs are stored.
public enum SDPAElementFormat: Int, Sendable {
    case float32 = 0
    /// bfloat16 bit patterns (`UInt16`, the high half of a float32).
    case bfloat16 = 1
}

/// One attention operand (query, key or value): a base pointer plus element strides.
public struct SDPAOperand {
    /// Float32 elements; with `format == .bfloat16` the address of `UInt16` bit patterns instead
    /// (see `init(bfloat16:strides:)`), never read as Float.
    public var data: UnsafePointer<Float>
    public var strides: Strides4
    public var format: SDPAElementFormat = .float32
    public init(data: UnsafePointer<Float>, strides: Strides4) { self.data = data; self.strides = strides }
    /// A bfloat16 operand: strides count 16-bit elements.
    public init(bfloat16 data: UnsafePointer<UInt16>, strides: Strides4) {
        self.data = UnsafeRawPointer(data).assumingMemoryBound(to: Float.self)
        self.strides = strides; self.format = .bfloat16
    }

    /// The address of element `offset` (in elements of `format`).
    func advanced(by offset: Int) -> UnsafePointer<Float> {
        format == .float32 ? data + offset
            : (UnsafeRawPointer(data) + 2 * offset).assumingMemoryBound(to: Float.self)
    }
}

/// Arithmetic of an attention problem.
public enum SDPAPrecision: Int, Sendable {
    /// float32 arithmetic (bf16 operands widened in the tile).
    case standard = 0
    /// SageAttention's recipe: Q per tile and K per key block (smoothed by its mean over tokens)
    /// quantised to int8, Q·Kᵀ in integers; softmax float32; P in 15-bit fixed point against V
    /// quantised to int8 per channel, P·V in integers. Flash only; needs AVX2 (`int8Supported`).
    case int8 = 1
}

/// The mask, broadcast to (batch, queryHeads, queryLength, keyLength) through its strides
/// (`channel` is the key axis, `token` the query axis).
public enum SDPAMask {
    case none
    /// Added to the scaled scores (0 keeps a key, -inf removes it).
    case additive(UnsafePointer<Float>, Strides4)
    /// Non-zero byte = the key may be attended; zero = removed (score -inf).
    case boolean(UnsafePointer<UInt8>, Strides4)
}

/// What a query row whose every key is removed produces.
public enum FullyMaskedRows: Sendable {
    /// The classic softmax of an all `-inf` row: NaN (diffusers' `get_attention_scores`).
    case nan
    /// torch's `scaled_dot_product_attention` on CPU: an all-zero output row.
    case zero
}

/// A whole attention problem: `out = softmax(scale · Q·Kᵀ + mask) · V`, per batch and query head.
/// Query head `h` reads key/value head `h / (queryHeads / keyValueHeads)` (grouped-query attention).
public struct SDPAProblem {
    public var batch: Int
    public var queryHeads: Int
    public var keyValueHeads: Int
    public var queryLength: Int
    public var keyLength: Int
    public var headDim: Int
    public var valueDim: Int
    public var query: SDPAOperand
    public var key: SDPAOperand
    public var value: SDPAOperand
    /// Float32 elements; with `outputFormat == .bfloat16` the address of `UInt16` bit patterns.
    public var output: UnsafeMutablePointer<Float>
    public var outputStrides: Strides4
    /// `.bfloat16` rounds each output to nearest even bf16.
    public var outputFormat: SDPAElementFormat = .float32
    public var precision: SDPAPrecision = .standard
    public var mask: SDPAMask
    public var scale: Float
    /// torch's convention: query `i` attends keys `j <= i` (top-left aligned), combined with `mask`.
    public var isCausal: Bool
    public var fullyMaskedRows: FullyMaskedRows

    public init(batch: Int, queryHeads: Int, keyValueHeads: Int, queryLength: Int, keyLength: Int,
                headDim: Int, valueDim: Int, query: SDPAOperand, key: SDPAOperand, value: SDPAOperand,
                output: UnsafeMutablePointer<Float>, outputStrides: Strides4,
                mask: SDPAMask = .none, scale: Float, isCausal: Bool = false,
                fullyMaskedRows: FullyMaskedRows = .zero) {
        self.batch = batch; self.queryHeads = queryHeads; self.keyValueHeads = keyValueHeads
        self.queryLength = queryLength; self.keyLength = keyLength
        self.headDim = headDim; self.valueDim = valueDim
        self.query = query; self.key = key; self.value = value
        self.output = output; self.outputStrides = outputStrides
        self.mask = mask; self.scale = scale; self.isCausal = isCausal
        self.fullyMaskedRows = fullyMaskedRows
    }
}

/// Which implementation computes a problem.
public enum SDPAAlgorithm: Sendable {
    /// Scores materialised per (batch, head): `mask + scale·Q·Kᵀ`, softmax, `·V`.
    /// O(queryLength · keyLength) extra memory per worker.
    case math
    /// Tiled online softmax: O(tile) extra memory per worker, never the full score matrix.
    case flash
}
