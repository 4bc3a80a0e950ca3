// Rotary, linear-attention and convolution kernels against naive double-precision references.
import DiffAttnKernels
import Glibc
import XCTest

private func numbers(_ n: Int, seed: UInt64) -> [Float] {
    var rng = SeededNumbers(state: seed)
    return (0..<n).map { _ in rng.next() }
}

final class KernelRotaryTests: XCTestCase {
    /// Runs the kernel on (b, l, h, d) data with `table`-addressed cos/sin; returns the result.
    private func rotated(_ x: [Float], _ b: Int, _ l: Int, _ h: Int, _ d: Int, offset: Int, width: Int, rule: RotaryRule,
                         cos: [Float], sin: [Float], rowStride: Int, headStride: Int = 0, laneStride: Int = 1,
                         rows: [Int]? = nil) -> [Float] {
        var y = x
        y.withUnsafeMutableBufferPointer { yp in cos.withUnsafeBufferPointer { cp in sin.withUnsafeBufferPointer { sp in
            withOptional(rows) { ip in
                applyRotary(RotaryTarget(data: yp.baseAddress!, batch: b, tokens: l, heads: h, batchStride: l * h * d,
                                         tokenStride: h * d, headStride: d),
                            laneOffset: offset, width: width, rule: rule,
                            table: RotaryTable(cos: cp.baseAddress!, sin: sp.baseAddress!, rowStride: rowStride,
                                               headStride: headStride, laneStride: laneStride, rowIndex: ip))
            }
        }}}
        return y
    }

    private func withOptional(_ a: [Int]?, _ body: (UnsafePointer<Int>?) -> Void) {
        guard let a else { return body(nil) }
        a.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    func testInterleavedMatchesElementwiseRule() {
        let (b, l, h, d) = (2, 5, 3, 20)   // 16 SIMD lanes plus a scalar tail
        let x = numbers(b * l * h * d, seed: 1), c = numbers(l * d, seed: 2), s = numbers(l * d, seed: 3)
        let got = rotated(x, b, l, h, d, offset: 0, width: d, rule: .interleaved, cos: c, sin: s, rowStride: d)
        var want = [Float](repeating: 0, count: x.count)
        for i in 0..<(b * l * h) {
            let t = i / h % l
            for j in 0..<d {
                let rot = j % 2 == 0 ? -Double(x[i * d + j + 1]) : Double(x[i * d + j - 1])
                want[i * d + j] = Float(Double(x[i * d + j]) * Double(c[t * d + j]) + rot * Double(s[t * d + j]))
            }
        }
        assertClose(got, want, tolerance: 1e-6, "interleaved")
    }

    func testPartialRotateHalfKeepsTheOtherLanes() {
        let (b, l, h, d) = (1, 4, 2, 24)
        for width in [8, 16] {   // scalar and SIMD halves
            let x = numbers(b * l * h * d, seed: 4), c = numbers(l * width, seed: 5), s = numbers(l * width, seed: 6)
            let got = rotated(x, b, l, h, d, offset: 0, width: width, rule: .rotateHalf, cos: c, sin: s, rowStride: width)
            var want = x
            let half = width / 2
            for i in 0..<(b * l * h) {
                let t = i / h % l
                for j in 0..<width {
                    let rot = j < half ? -Double(x[i * d + j + half]) : Double(x[i * d + j - half])
                    want[i * d + j] = Float(Double(x[i * d + j]) * Double(c[t * width + j]) + rot * Double(s[t * width + j]))
                }
            }
            assertClose(got, want, tolerance: 1e-6, "rotate-half width \(width)")
        }
    }

    func testPairAnglesPerHeadAndInterleavedComplexTables() {
        let (b, l, h, d) = (2, 3, 2, 8)
        let x = numbers(b * l * h * d, seed: 7), angles = numbers(l * h * d / 2, seed: 8).map { $0 * 3 }
        let c = angles.map { Float(Glibc.cos(Double($0))) }, s = angles.map { Float(Glibc.sin(Double($0))) }
        let perHead = rotated(x, b, l, h, d, offset: 0, width: d, rule: .pairAngles, cos: c, sin: s,
                              rowStride: h * d / 2, headStride: d / 2)
        var complex = [Float](repeating: 0, count: 2 * c.count)   // (re, im) pairs, lane stride 2
        for i in 0..<c.count { complex[2 * i] = c[i]; complex[2 * i + 1] = s[i] }
        var want = x
        for i in 0..<(b * l * h) {
            let t = i / h % l, head = i % h
            for p in 0..<(d / 2) {
                let a = Double(x[i * d + 2 * p]), bb = Double(x[i * d + 2 * p + 1])
                let k = (t * h + head) * d / 2 + p
                want[i * d + 2 * p] = Float(a * Double(c[k]) - bb * Double(s[k]))
                want[i * d + 2 * p + 1] = Float(a * Double(s[k]) + bb * Double(c[k]))
            }
        }
        assertClose(perHead, want, tolerance: 1e-6, "per-head pair angles")
        var y = x
        y.withUnsafeMutableBufferPointer { yp in complex.withUnsafeBufferPointer { cp in
            applyRotary(RotaryTarget(data: yp.baseAddress!, batch: b, tokens: l, heads: h, batchStride: l * h * d, tokenStride: h * d, headStride: d),
                        laneOffset: 0, width: d, rule: .pairAngles,
                        table: RotaryTable(cos: cp.baseAddress!, sin: cp.baseAddress! + 1, rowStride: h * d, headStride: d, laneStride: 2))
        }}
        assertClose(y, want, tolerance: 1e-6, "complex tables")
    }

    func testRowIndexSelectsTableRowsOnALaneSpan() {
        let (b, l, h, d) = (1, 4, 1, 12)
        let x = numbers(l * d, seed: 9), c = numbers(5 * 4, seed: 10), s = numbers(5 * 4, seed: 11)
        let rows = [4, 0, 2, 2]
        let got = rotated(x, b, l, h, d, offset: 4, width: 4, rule: .rotateHalf, cos: c, sin: s, rowStride: 4, rows: rows)
        var want = x
        for t in 0..<l {
            for j in 0..<4 {
                let rot = j < 2 ? -x[t * d + 4 + j + 2] : x[t * d + 4 + j - 2]
                want[t * d + 4 + j] = x[t * d + 4 + j] * c[rows[t] * 4 + j] + rot * s[rows[t] * 4 + j]
            }
        }
        assertClose(got, want, tolerance: 1e-6, "row index")
    }

    func testResultDoesNotDependOnThreadCount() {
        let (b, l, h, d) = (3, 67, 4, 32)
        let x = numbers(b * l * h * d, seed: 12), c = numbers(l * d, seed: 13), s = numbers(l * d, seed: 14)
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        Parallel.threadCount = 1
        let one = rotated(x, b, l, h, d, offset: 0, width: d, rule: .interleaved, cos: c, sin: s, rowStride: d)
        Parallel.threadCount = 4
        let four = rotated(x, b, l, h, d, offset: 0, width: d, rule: .interleaved, cos: c, sin: s, rowStride: d)
        XCTAssertEqual(one, four)
    }

    func testTablesFollowGet1dRotaryPosEmbedLayouts() {
        let pos: [Double] = [0, 1, 5]
        let inter = rotaryTables(dim: 4, positions: pos, theta: 10000, linearFactor: 1, ntkFactor: 1, layout: .repeatInterleaved, float64: true)
        let concat = rotaryTables(dim: 4, positions: pos, theta: 10000, linearFactor: 1, ntkFactor: 1, layout: .concatenated, float64: true)
        let half = rotaryTables(dim: 4, positions: pos, theta: 10000, linearFactor: 1, ntkFactor: 1, layout: .halfWidth, float64: false)
        for (r, p) in pos.enumerated() {
            for i in 0..<2 {
                let angle = p / Glibc.pow(10000, Double(2 * i) / 4)
                XCTAssertEqual(inter.cos[r * 4 + 2 * i], Float(Glibc.cos(angle)), accuracy: 1e-6)
                XCTAssertEqual(inter.sin[r * 4 + 2 * i + 1], Float(Glibc.sin(angle)), accuracy: 1e-6)
                XCTAssertEqual(concat.cos[r * 4 + i + 2], Float(Glibc.cos(angle)), accuracy: 1e-6)
                XCTAssertEqual(half.sin[r * 2 + i], Float(Glibc.sin(angle)), accuracy: 1e-5)
            }
        }
    }
}

final class KernelLinearAttentionTests: XCTestCase {
    func testMatchesTheNormalisedReLUKernelFormula() {
        let (b, h, n, m, d) = (2, 3, 37, 29, 20)
        // (B, N, H·D) layout, as the projections come out
        let q = numbers(b * n * h * d, seed: 20), k = numbers(b * m * h * d, seed: 21), v = numbers(b * m * h * d, seed: 22)
        var out = [Float](repeating: .nan, count: b * n * h * d)
        let strides = { (len: Int) in Strides4(batch: len * h * d, head: d, token: h * d, channel: 1) }
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
            out.withUnsafeMutableBufferPointer { op in
                reluLinearAttention(LinearAttentionProblem(
                    batch: b, heads: h, queryLength: n, keyLength: m, headDim: d, valueDim: d,
                    query: SDPAOperand(data: qp.baseAddress!, strides: strides(n)),
                    key: SDPAOperand(data: kp.baseAddress!, strides: strides(m)),
                    value: SDPAOperand(data: vp.baseAddress!, strides: strides(m)),
                    output: op.baseAddress!, outputStrides: strides(n), eps: 1e-15))
            }
        }}}
        var want = [Float](repeating: 0, count: out.count)
        for bi in 0..<b { for hi in 0..<h { for i in 0..<n {
            var num = [Double](repeating: 0, count: d), den = 0.0
            for j in 0..<m {
                var w = 0.0
                for c in 0..<d {
                    w += Double(max(q[(bi * n + i) * h * d + hi * d + c], 0)) * Double(max(k[(bi * m + j) * h * d + hi * d + c], 0))
                }
                den += w
                for c in 0..<d { num[c] += w * Double(v[(bi * m + j) * h * d + hi * d + c]) }
            }
            for c in 0..<d { want[(bi * n + i) * h * d + hi * d + c] = Float(num[c] / (den + 1e-15)) }
        }}}
        assertClose(out, want, tolerance: 1e-5, "linear attention")
    }
}

final class KernelConvolutionTests: XCTestCase {
    func testDepthwiseAndGroupedPointwiseMatchNaiveLoops() {
        let (b, c, hh, ww, k, groups) = (2, 6, 5, 7, 3, 3)
        let x = numbers(b * c * hh * ww, seed: 30), w = numbers(c * k * k, seed: 31)
        var y = [Float](repeating: 0, count: x.count)
        depthwiseConv2d(x, batch: b, channels: c, height: hh, width: ww, weight: w, kernel: k, into: &y)
        var want = [Float](repeating: 0, count: x.count)
        for bi in 0..<b { for ci in 0..<c { for oy in 0..<hh { for ox in 0..<ww {
            var acc = 0.0
            for ky in 0..<k { for kx in 0..<k {
                let iy = oy + ky - 1, ix = ox + kx - 1
                if iy >= 0 && iy < hh && ix >= 0 && ix < ww {
                    acc += Double(x[((bi * c + ci) * hh + iy) * ww + ix]) * Double(w[(ci * k + ky) * k + kx])
                }
            }}
            want[((bi * c + ci) * hh + oy) * ww + ox] = Float(acc)
        }}}}
        assertClose(y, want, tolerance: 1e-6, "depthwise")
        let block = c / groups, pw = numbers(c * block, seed: 32)
        var z = [Float](repeating: 0, count: x.count)
        groupedPointwiseConv(x, batch: b, channels: c, pixels: hh * ww, groups: groups, weight: pw, into: &z)
        var wantZ = [Float](repeating: 0, count: x.count)
        for bi in 0..<b { for o in 0..<c { for p in 0..<(hh * ww) {
            var acc = 0.0
            for i in 0..<block { acc += Double(pw[o * block + i]) * Double(x[(bi * c + (o / block) * block + i) * hh * ww + p]) }
            wantZ[(bi * c + o) * hh * ww + p] = Float(acc)
        }}}
        assertClose(z, wantZ, tolerance: 1e-6, "grouped pointwise")
    }
}
