// attentionProbabilities (diffusers' get_attention_scores) and softmaxRowsInPlace against
// double-precision references.
import DiffAttnKernels
import XCTest

final class KernelProbabilityTests: XCTestCase {
    func testAttentionProbabilitiesMatchReferenceWithStridesAndMask() {
        let b = 2, h = 3, nq = 70, nk = 45, d = 40
        let q = KernelTestTensor(b, h, nq, d, layout: 1, seed: 5)
        let k = KernelTestTensor(b, h, nk, d, layout: 2, seed: 6)
        var rng = SeededNumbers(state: 7)
        // (B, 1, Nq, Nk) additive mask; query row 3 of batch 1 removes every key.
        var mask = (0..<(b * nq * nk)).map { _ in rng.next() }
        for j in 0..<nk { mask[(1 * nq + 3) * nk + j] = -.infinity }
        let maskStrides = Strides4(batch: nq * nk, head: 0, token: nk, channel: 1)
        // Output rows padded by 3 to prove the output strides are honoured.
        let outStrides = Strides4(batch: h * nq * (nk + 3), head: nq * (nk + 3), token: nk + 3, channel: 1)
        var out = [Float](repeating: 42, count: b * h * nq * (nk + 3))
        let scale: Float = 0.37
        q.storage.withUnsafeBufferPointer { qp in k.storage.withUnsafeBufferPointer { kp in
            mask.withUnsafeBufferPointer { mp in out.withUnsafeMutableBufferPointer { op in
                attentionProbabilities(query: SDPAOperand(data: qp.baseAddress!, strides: q.strides),
                                       key: SDPAOperand(data: kp.baseAddress!, strides: k.strides),
                                       batch: b, heads: h, queryLength: nq, keyLength: nk, headDim: d,
                                       mask: .additive(mp.baseAddress!, maskStrides), scale: scale,
                                       output: op.baseAddress!, outputStrides: outStrides)
            } }
        } }
        var got: [Float] = [], want: [Float] = []
        for bi in 0..<b { for hi in 0..<h { for i in 0..<nq {
            var scores = [Double](repeating: 0, count: nk)
            for j in 0..<nk {
                var dot = 0.0
                for c in 0..<d { dot += Double(q[bi, hi, i, c]) * Double(k[bi, hi, j, c]) }
                scores[j] = Double(scale) * dot + Double(mask[(bi * nq + i) * nk + j])
            }
            let top = scores.max()!
            let total = scores.reduce(0) { $0 + exp($1 - top) }
            for j in 0..<nk {
                want.append(top == -.infinity ? .nan : Float(exp(scores[j] - top) / total))
                got.append(out[bi * outStrides.batch + hi * outStrides.head + i * outStrides.token + j])
            }
            XCTAssertEqual(out[bi * outStrides.batch + hi * outStrides.head + i * outStrides.token + nk], 42,
                           "padding untouched")
        } } }
        assertClose(got, want, "probabilities")
        XCTAssertTrue(got[((1 * h + 0) * nq + 3) * nk].isNaN, "a fully masked row is NaN, like torch's softmax")
    }

    func testSoftmaxRowsInPlace() {
        let rows = 6, columns = 37, stride = 40
        var rng = SeededNumbers(state: 9)
        var data = (0..<(rows * stride)).map { _ in rng.next() * 8 }
        for c in 0..<columns { data[4 * stride + c] = -.infinity }     // all -inf row → NaN
        data[2 * stride + 5] = -.infinity                               // one removed entry → 0
        let input = data
        data.withUnsafeMutableBufferPointer { softmaxRowsInPlace($0.baseAddress!, rows: rows, columns: columns, stride: stride) }
        for r in 0..<rows {
            let row = (0..<columns).map { Double(input[r * stride + $0]) }
            let top = row.max()!
            let total = row.reduce(0) { $0 + exp($1 - top) }
            for c in 0..<columns {
                let got = data[r * stride + c]
                if r == 4 { XCTAssertTrue(got.isNaN); continue }
                XCTAssertEqual(Double(got), exp(row[c] - top) / total, accuracy: 2e-6, "row \(r) col \(c)")
            }
            for c in columns..<stride { XCTAssertEqual(data[r * stride + c], input[r * stride + c], "stride padding untouched") }
        }
        XCTAssertEqual(data[2 * stride + 5], 0)
    }

    func testSoftmaxOfLargeMatrixUsesEveryRow() {
        let rows = 700, columns = 128
        var data = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows { for c in 0..<columns { data[r * columns + c] = Float((r + c) % 13) } }
        data.withUnsafeMutableBufferPointer { softmaxRowsInPlace($0.baseAddress!, rows: rows, columns: columns, stride: columns) }
        for r in 0..<rows {
            let sum = data[(r * columns)..<((r + 1) * columns)].reduce(0, +)
            XCTAssertEqual(sum, 1, accuracy: 1e-5, "row \(r)")
        }
    }
}
