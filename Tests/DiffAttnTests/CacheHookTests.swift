// Caches (Hooks/): conformance vectors worked out from diffusers' hooks and the pieces the fixtures do not isolate.

import DiffAttn
import DiffAttnKernels
import XCTest

final class CacheHookTests: XCTestCase {
    static let flux = #"{"attention_head_dim": 8, "axes_dims_rope": [2, 2, 4], "in_channels": 4, "joint_attention_dim": 4, "num_attention_heads": 1, "num_layers": 2, "num_single_layers": 1, "patch_size": 1, "pooled_projection_dim": 4}"#

    /// Runs every block once (`h += scale[i]`), returns "C"/"S" per block.
    private func step(_ m: Model, _ scales: [Float], _ h: inout Tensor) throws -> String {
        var out = ""
        for (i, p) in m.transformerBlockPaths.enumerated() {
            var io = BlockIO(hiddenStates: h)
            if try m.moduleBegin(p, &io) {
                io.hiddenStates.storage = io.hiddenStates.storage.map { $0 + scales[i] }
                try m.moduleEnd(p, &io)
                out += "C"
            } else {
                out += "S"
            }
            h = io.hiddenStates
        }
        return out
    }

    func testTaylorSeerConformanceVector() throws {  // hooks/taylorseer_cache.py:TaylorSeerCacheHook: interval 2, before 2
        let m = try Model(className: "FluxTransformer2DModel", config: Self.flux)
        var c = TaylorSeerCacheConfig()
        c.cacheInterval = 2; c.disableCacheBeforeStep = 2; c.cacheIdentifiers = ["transformer_blocks\\.0"]
        XCTAssertEqual(try m.applyTaylorSeerCache(c).map(\.0), ["transformer_blocks.0"])
        m.setCacheContext("cond")
        var got = ""
        for s in 0..<8 {
            var h = Tensor(shape: [1, 2, 4], repeating: Float(s))
            got += String(try step(m, [1, 1, 1], &h).first!)
            if got.last == "S" { XCTAssertEqual(h.storage[0], Float(s) + 3, accuracy: 1e-2, "linear forecast (s + 1) plus the two later blocks at step \(s)") }
        }
        XCTAssertEqual(got, "CCSCSCSC")
    }

    func testMagCacheConformanceAndResampling() throws {  // hooks/mag_cache.py
        XCTAssertEqual(MagCacheConfig.resample([1.0, 1.1, 1.0], 5), [1.0, 1.0, 1.1, 1.0, 1.0])
        let m = try Model(className: "FluxTransformer2DModel", config: Self.flux)
        try m.applyMagCache(try MagCacheConfig(threshold: 0.5, maxSkipSteps: 2, retentionRatio: 0.25, numInferenceSteps: 4, magRatios: [1, 1, 1, 1]))
        var got: [String] = []
        for _ in 0..<5 {
            var h = Tensor(shape: [1, 2, 4], repeating: 0)
            got.append(try step(m, [1, 2, 3], &h))
            XCTAssertEqual(h.storage[0], 6, accuracy: 1e-6)  // a skip reuses the whole residual
        }
        XCTAssertEqual(got.map { String($0.first!) }.joined(), "CSSCC")
    }

    func testFirstBlockCacheSkipsTheTailAndAddsItsResidual() throws {
        let m = try Model(className: "FluxTransformer2DModel", config: Self.flux)
        try m.applyFirstBlockCache(FirstBlockCacheConfig(threshold: 0.1))
        var h = Tensor(shape: [1, 2, 4], repeating: 0)
        XCTAssertThrowsError(try step(m, [1, 2, 3], &h))  // no cache context
        m.setCacheContext("cond")
        h = Tensor(shape: [1, 2, 4], repeating: 0)
        XCTAssertEqual(try step(m, [1, 2, 3], &h), "CCC")
        h = Tensor(shape: [1, 2, 4], repeating: 0)
        XCTAssertEqual(try step(m, [1.05, 9, 9], &h), "CSS")
        XCTAssertEqual(h.storage[0], 1.05 + 5, accuracy: 1e-5)
        XCTAssertEqual(m.enabledCache, .firstBlockCache)
        XCTAssertTrue(try m.disableCache())
        XCTAssertNil(m.enabledCache)
    }

    func testSpectrumRoundTripAndShift() {
        let x: [Float] = (0..<30).map { Float($0 % 7) - 2.5 }
        let s = Spectrum([1, 5, 6], x)
        let back = s.inverseReal([1, 5, 6])
        for (a, b) in zip(x, back) { XCTAssertEqual(Double(a), b, accuracy: 1e-9) }
        let (lo, hi) = s.splitLowHigh()
        let sum = lo.adding(hi)
        XCTAssertEqual(sum.re, s.re); XCTAssertEqual(sum.im, s.im)
        XCTAssertEqual(Spectrum.shift(Spectrum.shift([0, 1, 2, 3, 4], 1, 5, inverse: false), 1, 5, inverse: true), [0, 1, 2, 3, 4])
        XCTAssertEqual(Spectrum.shift([0, 1, 2, 3, 4], 1, 5, inverse: false), [3, 4, 0, 1, 2])  // numpy.fft.fftshift
    }

    func testTeaCachePolynomialIsHorner() throws {
        let c = try TeaCacheConfig(relL1Thresh: 0.3, coefficients: [2, -1, 0.5])
        XCTAssertEqual(c.rescale(3), 2 * 9 - 3 + 0.5)
        XCTAssertThrowsError(try TeaCacheConfig(relL1Thresh: .nan))
    }
}
