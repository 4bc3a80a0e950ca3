import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels
import Glibc

/// diffusers' `SmoothedEnergyGuidanceConfig` (hooks/smoothed_energy_guidance_utils.py): which blocks'
/// self-attention queries are blurred. `blur_sigma` is not part of it: diffusers passes it beside
/// the config (`_apply_smoothed_energy_guidance_hook(module, config, blur_sigma)`).
public struct SmoothedEnergyGuidanceConfig: Sendable {
    public var indices: [Int]
    public var fqn = "auto"
    /// `_query_proj_identifiers`; nil = `["to_q"]` (written back, as diffusers).
    public var queryProjIdentifiers: [String]?
    public init(indices: [Int]) { self.indices = indices }
}

/// How SEG maps sigma to a blur. diffusers 0.42.1 inverts SEG's rule (docs/deviations.md):
/// sigma above `blur_threshold_inf` gets the (clamped) Gaussian, any finite sigma the mean.
public enum QueryBlurMapping: Int32, Sendable {
    /// diffusers 0.42.1 exactly (the default: numbers match diffusers' hook).
    case diffusers0421 = 0
    /// SEG as published: finite sigma → Gaussian, sigma above the threshold → the mean.
    case corrected = 1
}

/// The query blur of SEG (`_gaussian_blur_2d`): the first ⌊√S⌋² tokens of a (B, S, D) query seen as
/// a (B, D, n, n) grid in row-major token order; the remaining tokens are left alone.
public enum QueryBlur {
    public static let thresholdInf = 9999.9

    public static func apply(_ q: Tensor, sigma: Double, mapping: QueryBlurMapping = .diffusers0421) throws -> Tensor {
        guard q.shape.count == 3 else {
            throw DiffAttnError.shape("smoothed energy guidance blurs a (batch, tokens, channels) query, got shape \(q.shape)")
        }
        guard sigma.isFinite || sigma == .infinity, sigma > 0 else {
            throw DiffAttnError.value("blur_sigma must be positive, got \(sigma)")
        }
        let infinite = sigma > thresholdInf
        let gaussian = mapping == .diffusers0421 ? infinite : !infinite
        let (b, s, d) = (q.shape[0], q.shape[1], q.shape[2])
        let n = Int(Double(s).squareRoot().rounded(.down)), m = n * n
        guard n > 0 else { return q }
        var out = q
        if !gaussian {
            for bi in 0..<b {
                for c in 0..<d {
                    var sum: Float = 0
                    for t in 0..<m { sum += q.storage[(bi * s + t) * d + c] }
                    let mean = sum / Float(m)
                    for t in 0..<m { out.storage[(bi * s + t) * d + c] = mean }
                }
            }
            return out
        }
        // kernel size ⌈6σ⌉ + 1 − (⌈6σ⌉ mod 2), clamped to n (odd n) or n + 1 (even n)
        let six = min((6 * sigma).rounded(.up), Double(Int32.max))
        var k = Int(six) + 1 - Int(six) % 2
        k = min(k, n - (n % 2 - 1))
        let half = Float(k - 1) / 2
        var w = (0..<k).map { i -> Float in
            let x = -half + Float(i)
            let r = x / Float(sigma)
            return Float(exp(Double(-0.5 * r * r)))
        }
        let total = w.reduce(0, +)
        w = w.map { $0 / total }
        let pad = k / 2
        func reflect(_ i: Int) -> Int {  // torch's reflect padding (edge not repeated)
            var j = i
            if j < 0 { j = -j }
            if j >= n { j = 2 * (n - 1) - j }
            return j
        }
        for bi in 0..<b {
            for c in 0..<d {
                for i in 0..<n {
                    for j in 0..<n {
                        var acc: Double = 0
                        for u in 0..<k {
                            let row = reflect(i + u - pad)
                            for v in 0..<k {
                                let col = reflect(j + v - pad)
                                let weight: Float = w[u] * w[v]
                                let index: Int = (bi * s + row * n + col) * d + c
                                acc += Double(weight) * Double(q.storage[index])
                            }
                        }
                        out.storage[(bi * s + i * n + j) * d + c] = Float(acc)
                    }
                }
            }
        }
        return out
    }
}

extension Model {
    public static let smoothedEnergyGuidanceHookName = "smoothed_energy_guidance_hook"

    /// `_apply_smoothed_energy_guidance_hook(module, config, blur_sigma)`: every self-attention
    /// module inside the selected blocks gets its query projection's output blurred inside our
    /// attention step. Unlike diffusers this also works on Flux (diffusers fails on
    /// `FluxAttention.is_cross_attention`; docs/deviations.md). Returns the hooked projections.
    @discardableResult
    public func applySmoothedEnergyGuidance(_ config: inout SmoothedEnergyGuidanceConfig, blurSigma: Double,
                                            mapping: QueryBlurMapping = .diffusers0421) throws -> [String] {
        guard blurSigma > 0, !blurSigma.isNaN else { throw DiffAttnError.value("blur_sigma must be positive, got \(blurSigma)") }
        if config.fqn == "auto" {
            guard let found = transformerBlockListNames.first(where: { n in root.children.contains { $0.name == n } }) else {
                throw DiffAttnError.value("Could not find a suitable identifier for the transformer blocks automatically. Please provide a valid `fqn` (fully qualified name) that identifies a stack of transformer blocks.")
            }
            config.fqn = found
        }
        if config.queryProjIdentifiers == nil { config.queryProjIdentifiers = ["to_q"] }
        let list = try module(at: config.fqn)
        var hooked: [String] = []
        var found = false
        for (i, block) in list.children.enumerated() where config.indices.contains(i) {
            found = true
            let prefix = config.fqn + "." + block.name
            var targets: [(String, Attention)] = []
            if let a = block.attention { targets.append((prefix, a)) }
            block.walk(prefix) { p, n in if let a = n.attention { targets.append((p, a)) } }
            for (p, a) in targets where !a.derived.isCrossAttention {
                for id in config.queryProjIdentifiers! where a.parameters.contains(id + ".weight") {
                    let sigma = blurSigma
                    a.setProjectionTransform(id) { try QueryBlur.apply($0, sigma: sigma, mapping: mapping) }
                    hooked.append(p + "." + id)
                }
            }
        }
        guard found else {
            throw DiffAttnError.value("Could not find any transformer blocks matching the provided indices \(config.indices) and fully qualified name '\(config.fqn)'. Please check the indices and fqn for correctness.")
        }
        return hooked
    }

    /// Removes every query blur (diffusers' `remove_hook(name, recurse=True)` of the SEG hooks).
    public func removeSmoothedEnergyGuidance() {
        for (_, a) in attentionModules { a.clearProjectionTransforms() }
    }
}
