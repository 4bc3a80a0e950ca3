// The projection GEMM (`linear`) on every kernel path, its thread-count independence, 16-bit
// weight storage, and a whole Attention forward bitwise equal for 1, 2 and 3 threads.
import DiffAttn
import DiffAttnKernels
import XCTest

final class KernelLinearTests: XCTestCase {
    private var savedThreads = 1
    private var savedPath = KernelPath.best
    override func setUp() { savedThreads = Parallel.threadCount; savedPath = KernelPath.selected }
    override func tearDown() { Parallel.threadCount = savedThreads; KernelPath.selected = savedPath }

    private func numbers(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SeededNumbers(state: seed)
        return (0..<n).map { _ in rng.next() }
    }

    private func runLinear(_ x: [Float], rows: Int, _ inF: Int, _ w: [Float], _ b: [Float]?, _ outF: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: rows * outF)
        y.withUnsafeMutableBufferPointer { yp in
            linear(x, rows: rows, inFeatures: inF, weight: w, bias: b, outFeatures: outF, into: yp.baseAddress!)
        }
        return y
    }

    func testEveryPathMatchesADoubleReference() {
        // Odd sizes: partial row blocks, partial groups of 6 outputs, several panels and K chunks.
        for (rows, inF, outF) in [(1, 1, 1), (7, 5, 3), (65, 130, 13), (130, 77, 200), (64, 300, 385)] {
            let x = numbers(rows * inF, seed: 1), w = numbers(outF * inF, seed: 2), b = numbers(outF, seed: 3)
            for path in KernelPath.allCases where path.isSupported {
                KernelPath.selected = path
                let y = runLinear(x, rows: rows, inF, w, b, outF)
                var worst = 0.0
                for r in 0..<rows {
                    for o in 0..<outF {
                        var s = Double(b[o])
                        for i in 0..<inF { s += Double(x[r * inF + i]) * Double(w[o * inF + i]) }
                        worst = max(worst, abs(Double(y[r * outF + o]) - s))
                    }
                }
                XCTAssertLessThan(worst, 1e-4 * Double(inF).squareRoot(), "\(path.name) \(rows)×\(inF)×\(outF)")
            }
        }
    }

    func testResultsDoNotDependOnThreadCount() {
        let (rows, inF, outF) = (300, 200, 400)
        let x = numbers(rows * inF, seed: 4), w = numbers(outF * inF, seed: 5)
        Parallel.threadCount = 1
        let one = runLinear(x, rows: rows, inF, w, nil, outF)
        for threads in [2, 3] {
            Parallel.threadCount = threads
            XCTAssertEqual(runLinear(x, rows: rows, inF, w, nil, outF), one, "\(threads) threads")
        }
    }

    func testBFloat16NarrowingMatchesThePortableRounding() {
        var values = numbers(1000, seed: 6).map { $0 * 3e3 }
        values += [0, -0, .infinity, -.infinity, 1.00390625, 1.01171875, Float(bitPattern: 0x3F80_8000)]
        var narrow = [UInt16](repeating: 0, count: values.count)
        narrowFromFloat32(values, count: values.count, format: .bfloat16, into: &narrow)
        XCTAssertEqual(narrow, values.map(bfloat16Bits))
        var wide = [Float](repeating: 0, count: values.count)
        widenToFloat32(narrow, count: narrow.count, format: .bfloat16, into: &wide)
        for (a, b) in zip(values, wide) where a.isFinite { XCTAssertLessThanOrEqual(abs(a - b), abs(a) / 256) }
    }

    func testSixteenBitWeightsStayCloseToFloat32() {
        let (rows, inF, outF) = (70, 96, 50)
        let x = numbers(rows * inF, seed: 7), w = numbers(outF * inF, seed: 8)
        let reference = runLinear(x, rows: rows, inF, w, nil, outF)
        for (format, tolerance) in [(LinearWeightFormat.bfloat16, Float(2e-2)), (.float16, 2e-3)] {
            var bits = [UInt16](repeating: 0, count: w.count)
            narrowFromFloat32(w, count: w.count, format: format, into: &bits)
            var y = [Float](repeating: .nan, count: rows * outF)
            bits.withUnsafeBytes { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    linear(x, rows: rows, inFeatures: inF, weight: wp.baseAddress!, format: format, bias: nil,
                           outFeatures: outF, into: yp.baseAddress!)
                }
            }
            let scale = reference.map(abs).max()!
            let worst = zip(y, reference).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst / scale, tolerance, "\(format)")
            XCTAssertGreaterThan(worst, 0, "\(format) storage must round something")
        }
    }

    func testLayerwiseCastingHalvesWeightMemoryAndSkipsNorms() throws {
        var config = AttentionConfig(queryDim: 64)
        config.heads = 4; config.dimHead = 16; config.qkNorm = .layerNorm; config.bias = true
        let attention = try Attention(config)
        let before = attention.weightBytes
        try attention.enableLayerwiseCasting(storage: .bfloat16)
        let formats = attention.layerwiseCastingFormats
        XCTAssertEqual(formats["to_q.weight"], .bfloat16)
        XCTAssertEqual(formats["to_out.0.bias"], .bfloat16)
        XCTAssertNil(formats["norm_q.weight"])
        XCTAssertLessThan(attention.weightBytes, before * 6 / 10)
        try attention.enableLayerwiseCasting(storage: .float16, skipModulesPattern: ["^to_(q|k)$"])
        XCTAssertNil(attention.layerwiseCastingFormats["to_q.weight"])
        XCTAssertEqual(attention.layerwiseCastingFormats["to_v.weight"], .float16)
        XCTAssertThrowsError(try attention.enableLayerwiseCasting(storage: .bfloat16, skipModulesPattern: ["("]))
    }

    func testAttentionForwardIsBitwiseEqualForAnyThreadCount() throws {
        var config = AttentionConfig(queryDim: 96)
        config.heads = 3; config.dimHead = 32; config.crossAttentionDim = 48; config.bias = true
        let attention = try Attention(config)
        let x = Tensor(shape: [2, 150, 96], storage: numbers(2 * 150 * 96, seed: 9))
        let e = Tensor(shape: [2, 20, 48], storage: numbers(2 * 20 * 48, seed: 10))
        let inputs = AttentionInputs(hiddenStates: x, encoderHiddenStates: e)
        for cast in [false, true] {
            if cast { try attention.enableLayerwiseCasting(storage: .bfloat16) }
            Parallel.threadCount = 1
            let one = try attention.forward(inputs)[0].storage
            for threads in [2, 3] {
                Parallel.threadCount = threads
                XCTAssertEqual(try attention.forward(inputs)[0].storage, one, "\(threads) threads, cast \(cast)")
            }
        }
    }
}
