import Glibc
import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// `FasterCacheDenoiserHook` (stateful, hooks/faster_cache.py:FasterCacheDenoiserHook) on the root: decides at `beginStep`
/// whether this step may drop the unconditional half of the CFG batch, and turns the host's
/// denoiser output into the full `[uncond; cond]` batch (`Model.fasterCacheDenoiserOutput`).
/// The frequency split only ever acts on the last two axes (H, W), whatever `tensor_format`
/// says: diffusers' permutes keep H, W last and its full-tensor `fftshift` is undone in the same
/// layout, so the reconstruction is per H×W slice.
public final class FasterCacheDenoiserHook: ModelHook, @unchecked Sendable {
    let skipRange: Int
    let range: (Double, Double)
    let lowRange: (Double, Double), highRange: (Double, Double)
    let alphaLow: Double, alphaHigh: Double
    let distilled: Bool
    let timestep: () throws -> Double
    let lowWeight: (() throws -> Double)?, highWeight: (() throws -> Double)?
    private let lock = Locked()
    private var iteration = 0
    private var skipNow = false
    private var lowDelta: Spectrum?, highDelta: Spectrum?

    init(_ c: FasterCacheConfig, timestep: @escaping () throws -> Double) {
        skipRange = c.unconditionalBatchSkipRange; range = c.unconditionalBatchTimestepSkipRange
        lowRange = c.lowFrequencyWeightUpdateTimestepRange; highRange = c.highFrequencyWeightUpdateTimestepRange
        alphaLow = c.alphaLowFrequency; alphaHigh = c.alphaHighFrequency; distilled = c.isGuidanceDistilled
        lowWeight = c.lowFrequencyWeightCallback; highWeight = c.highFrequencyWeightCallback
        self.timestep = timestep
    }

    public override var isStateful: Bool { true }
    public override var hookDescription: String { "FasterCacheDenoiserHook" }
    public override func resetState(_ module: HookRegistry) throws {
        lock.run { iteration = 0; skipNow = false; lowDelta = nil; highDelta = nil }
    }

    /// The step's decision (the root's pre-forward = `beginStep`).
    public override func preForward(_ module: HookRegistry, _ inputs: inout AttentionInputs?) throws {
        let t = try timestep()
        lock.run { skipNow = iteration > 0 && range.0 < t && t < range.1 && iteration % skipRange != 0 && !distilled }
    }

    public override func postForward(_ module: HookRegistry, _ output: inout [Tensor]) throws { lock.run { iteration += 1 } }

    /// Whether the host should run only the conditional half of the batch this step.
    public var skipsUnconditional: Bool { lock.run { skipNow } }

    /// diffusers' output half of the denoiser hook: with the unconditional half skipped, `h` is
    /// the conditional output and the result is `[uncond ≈ h + freq deltas; h]`; otherwise `h` is
    /// `[uncond; cond]`, the deltas are recorded and `h` is returned as is.
    public func process(_ h: Tensor) throws -> Tensor {
        guard !distilled else { return h }
        guard h.rank >= 3, h.shape[0] >= 1 else { throw DiffAttnError.shape("FasterCache: the denoiser output needs a batch and H, W axes, got \(h.shape)") }
        let (skip, t) = (lock.run { skipNow }, try timestep())
        if skip {
            guard let lo = lock.run({ lowDelta }), let hi = lock.run({ highDelta }), lo.count == h.count else {
                throw DiffAttnError.state("FasterCache: no frequency deltas of the shape \(h.shape) recorded yet")
            }
            let wl = try lowWeight?() ?? (lowRange.0 < t && t < lowRange.1 ? alphaLow : 1)
            let wh = try highWeight?() ?? (highRange.0 < t && t < highRange.1 ? alphaHigh : 1)
            let (l2, h2) = (lo.scaled(wl), hi.scaled(wh))
            lock.run { lowDelta = l2; highDelta = h2 }
            let delta = l2.adding(h2).inverseReal(h.shape)
            return Tensor(shape: [2 * h.shape[0]] + h.shape.dropFirst(),
                          storage: zip(h.storage, delta).map { $0 + Float($1) } + h.storage)
        }
        guard h.shape[0] % 2 == 0 else { throw DiffAttnError.shape("FasterCache: the full CFG batch must be even, got \(h.shape[0])") }
        let half = h.count / 2
        let d = Spectrum(h.shape, Array(h.storage[..<half])).subtracting(Spectrum(h.shape, Array(h.storage[half...])))
        let (lo, hi) = d.splitLowHigh()
        lock.run { lowDelta = lo; highDelta = hi }
        return h
    }
}

/// Centre-shifted 2-D spectra of every H×W slice of a tensor (double precision).
package struct Spectrum {
    package var re: [Double], im: [Double]
    let h: Int, w: Int
    var count: Int { re.count }

    init(re: [Double], im: [Double], h: Int, w: Int) { self.re = re; self.im = im; self.h = h; self.w = w }

    /// `fftshift(fft2(x))` per slice; `shape`'s last two axes are H, W.
    package init(_ shape: [Int], _ x: [Float]) {
        h = shape[shape.count - 2]; w = shape[shape.count - 1]
        (re, im) = Spectrum.dft2(x.map(Double.init), [Double](repeating: 0, count: x.count), h, w, inverse: false)
        (re, im) = (Spectrum.shift(re, h, w, inverse: false), Spectrum.shift(im, h, w, inverse: false))
    }

    func scaled(_ s: Double) -> Spectrum { Spectrum(re: re.map { $0 * s }, im: im.map { $0 * s }, h: h, w: w) }
    package func adding(_ o: Spectrum) -> Spectrum { Spectrum(re: zip(re, o.re).map(+), im: zip(im, o.im).map(+), h: h, w: w) }
    func subtracting(_ o: Spectrum) -> Spectrum { Spectrum(re: zip(re, o.re).map(-), im: zip(im, o.im).map(-), h: h, w: w) }

    /// Low part: inside the disc of radius `min(H, W) / 5` around (W/2, H/2); high: the rest.
    package func splitLowHigh() -> (Spectrum, Spectrum) {
        let r = min(h, w) / 5
        var lo = self, hi = self
        for i in 0..<count {
            let y = (i / w) % h, x = i % w
            let inside = (x - w / 2) * (x - w / 2) + (y - h / 2) * (y - h / 2) <= r * r
            if inside { hi.re[i] = 0; hi.im[i] = 0 } else { lo.re[i] = 0; lo.im[i] = 0 }
        }
        return (lo, hi)
    }

    /// `real(ifft2(ifftshift(self)))`.
    package func inverseReal(_ shape: [Int]) -> [Double] {
        let (r, i) = (Spectrum.shift(re, h, w, inverse: true), Spectrum.shift(im, h, w, inverse: true))
        return Spectrum.dft2(r, i, h, w, inverse: true).0
    }

    package static func shift(_ a: [Double], _ h: Int, _ w: Int, inverse: Bool) -> [Double] {
        // fftshift moves index i to (i + n/2) mod n; ifftshift undoes it.
        let (sy, sx) = inverse ? (h - h / 2, w - w / 2) : (h / 2, w / 2)
        var out = a
        for base in stride(from: 0, to: a.count, by: h * w) {
            for y in 0..<h { for x in 0..<w { out[base + ((y + sy) % h) * w + (x + sx) % w] = a[base + y * w + x] } }
        }
        return out
    }

    /// Naive separable 2-D DFT per slice (sizes are latent-sized); the inverse divides by H·W.
    static func dft2(_ re: [Double], _ im: [Double], _ h: Int, _ w: Int, inverse: Bool) -> ([Double], [Double]) {
        let sign = inverse ? 1.0 : -1.0
        func twiddles(_ n: Int) -> ([Double], [Double]) {
            let angles: [Double] = (0..<n).map { 2 * Double.pi * Double($0) / Double(n) }
            return (angles.map { Glibc.cos($0) }, angles.map { sign * Glibc.sin($0) })
        }
        /// One 1-D DFT of length `n` along `step` for each of `lines` lines starting `lineStep` apart.
        func pass(_ ar: [Double], _ ai: [Double], n: Int, step: Int, lines: Int, lineStep: Int) -> ([Double], [Double]) {
            let (c, sn) = twiddles(n)
            var (br, bi) = (ar, ai)
            for base in stride(from: 0, to: ar.count, by: h * w) { for line in 0..<lines { for k in 0..<n {
                var (sr, si) = (0.0, 0.0)
                for x in 0..<n {
                    let j = (k * x) % n, v = base + line * lineStep + x * step
                    sr += ar[v] * c[j] - ai[v] * sn[j]; si += ar[v] * sn[j] + ai[v] * c[j]
                }
                br[base + line * lineStep + k * step] = sr; bi[base + line * lineStep + k * step] = si
            } } }
            return (br, bi)
        }
        let rows = pass(re, im, n: w, step: 1, lines: h, lineStep: w)
        var (ar, ai) = pass(rows.0, rows.1, n: h, step: w, lines: w, lineStep: 1)
        if inverse { let s = 1 / Double(h * w); ar = ar.map { $0 * s }; ai = ai.map { $0 * s } }
        return (ar, ai)
    }
}

extension Model {
    /// FasterCache's unconditional-branch rule for this step (false when FasterCache is off).
    public var fasterCacheSkipsUnconditional: Bool {
        (root.registry?.hook(named: Model.fasterCacheDenoiserHookName) as? FasterCacheDenoiserHook)?.skipsUnconditional ?? false
    }

    /// Passes the host's denoiser output of this step through FasterCache's denoiser hook.
    public func fasterCacheDenoiserOutput(_ h: Tensor) throws -> Tensor {
        guard let hook = root.registry?.hook(named: Model.fasterCacheDenoiserHookName) as? FasterCacheDenoiserHook else {
            throw DiffAttnError.state("FasterCache is not applied to this model")
        }
        return try hook.process(h)
    }
}
