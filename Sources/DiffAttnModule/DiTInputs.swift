import DiffAttnKernels

/// Which diffusers module class an `Attention` stands for. The classes share the forward
/// machinery; they differ in constructor arguments, state-dict layout and default processor.
public enum ModuleClass: Int32, Sendable {
    case attention = 0
    /// `transformer_flux.FluxAttention` (transformer_flux.py:FluxAttention).
    case fluxAttention = 1
    /// `transformer_mochi.MochiAttention` (transformer_mochi.py:MochiAttention).
    case mochiAttention = 2
    /// `attention_processor.SanaMultiscaleLinearAttention` (attention_processor.py:SanaMultiscaleLinearAttention).
    case sanaMultiscaleLinearAttention = 3

    public var name: String {
        switch self {
        case .attention: return "Attention"
        case .fluxAttention: return "FluxAttention"
        case .mochiAttention: return "MochiAttention"
        case .sanaMultiscaleLinearAttention: return "SanaMultiscaleLinearAttention"
        }
    }
}

/// `norm_type` of `SanaMultiscaleLinearAttention`.
public enum MultiscaleNorm: Int32, Sendable {
    case batchNorm = 0, rmsNorm = 1, layerNorm = 2
}

/// The arguments only `SanaMultiscaleLinearAttention` takes. Its other arguments map onto
/// `AttentionConfig`: `in_channels` → `queryDim`, `num_attention_heads` → `heads` (computed from
/// `mult` when nil), `attention_head_dim` → `dimHead`, `eps`, `residualConnection`.
public struct MultiscaleOptions: Sendable, Equatable {
    public var outChannels: Int = 0
    public var mult: Double = 1
    public var normType: MultiscaleNorm = .batchNorm
    public var kernelSizes: [Int] = [5]
    public init() {}
}

/// A (cos, sin) pair of rotary tables.
public struct RotaryPair: Sendable {
    public var cos: Tensor
    public var sin: Tensor
    public init(cos: Tensor, sin: Tensor) { self.cos = cos; self.sin = sin }
}

/// The keyword arguments DiT processors take beyond `Attention.forward`'s own.
public struct DiTInputs: Sendable {
    /// `image_rotary_emb` (Flux, CogVideoX, Hunyuan, Mochi) or `rotary_emb` (Stable Audio).
    public var rotary: RotaryPair?
    /// Allegro's `image_rotary_emb = ((t, h, w) tables, (t, h, w) positions)`.
    public var allegroTables: [RotaryPair] = []
    public var allegroPositions: [NDArray<Int>] = []
    /// Lumina's complex tables stored as (P, L, D/2, 2) float32 (real, imaginary).
    public var queryRotaryEmb: Tensor?
    public var keyRotaryEmb: Tensor?
    public var baseSequenceLength: Int?
    public init() {}
}

/// FluxPosEmbed-style tables: `positions` is (rows, axes) row-major; axis `a` gets
/// `get_1d_rotary_pos_embed(axesDim[a], positions[:, a], …)` and the axes are concatenated.
public func rotaryTablesForAxes(_ positions: [Double], rows: Int, axesDim: [Int], theta: Double, linearFactor: Double,
                                ntkFactor: Double, layout: RotaryTableLayout, float64: Bool) throws -> (cos: Tensor, sin: Tensor) {
    let widths = axesDim.map { layout == .halfWidth ? $0 / 2 : $0 }, total = widths.reduce(0, +)
    _ = try checkedElementCount([rows, total], "the rotary tables")
    var cosOut = Tensor(shape: [rows, total], repeating: 0), sinOut = cosOut
    var offset = 0
    for (a, dim) in axesDim.enumerated() {
        let column = (0..<rows).map { positions[$0 * axesDim.count + a] }
        let t = rotaryTables(dim: dim, positions: column, theta: theta, linearFactor: linearFactor, ntkFactor: ntkFactor,
                             layout: layout, float64: float64)
        for r in 0..<rows {
            for j in 0..<widths[a] {
                cosOut.storage[r * total + offset + j] = t.cos[r * widths[a] + j]
                sinOut.storage[r * total + offset + j] = t.sin[r * widths[a] + j]
            }
        }
        offset += widths[a]
    }
    return (cosOut, sinOut)
}
