// The normalisation kernels against their definitions (computed independently in Double).
import DiffAttnKernels
import XCTest

final class NormTests: XCTestCase {
    private let x: [Float] = [3, -1, 2, 0.5, 4, -2, 1, 1]

    func testLayerNormRowsHaveZeroMeanUnitVariance() {
        var y = [Float](repeating: 0, count: 8)
        layerNormRows(x, &y, rows: 2, width: 4, eps: 0, weight: nil, bias: nil)
        for r in 0..<2 {
            let row = y[(r * 4)..<(r * 4 + 4)].map(Double.init)
            XCTAssertEqual(row.reduce(0, +) / 4, 0, accuracy: 1e-6)
            XCTAssertEqual(row.map { $0 * $0 }.reduce(0, +) / 4, 1, accuracy: 1e-5)
        }
    }

    func testRMSNormAndL2() {
        var y = [Float](repeating: 0, count: 8)
        rmsNormRows(x, &y, rows: 2, width: 4, eps: 0, weight: [2, 2, 2, 2])
        let rms = (Double(9 + 1 + 4 + 0.25) / 4).squareRoot()
        XCTAssertEqual(Double(y[0]), 2 * 3 / rms, accuracy: 1e-5)
        l2NormRows(x, &y, rows: 2, width: 4, eps: 1e-12)
        XCTAssertEqual(y[4...7].map { Double($0 * $0) }.reduce(0, +), 1, accuracy: 1e-6)
    }

    func testGroupNormStatisticsSpanChannelsAndTokens() {
        // (B=1, tokens=2, C=4), 2 groups: group 0 is channels 0-1 over both tokens.
        var y = [Float](repeating: 0, count: 8)
        groupNorm(x, &y, batch: 1, tokens: 2, channels: 4, groups: 2, batchStride: 8, tokenStride: 4, channelStride: 1,
                  eps: 0, weight: nil, bias: nil)
        let group0 = [x[0], x[1], x[4], x[5]].map(Double.init)
        let mean = group0.reduce(0, +) / 4
        let std = (group0.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4).squareRoot()
        XCTAssertEqual(Double(y[5]), (Double(x[5]) - mean) / std, accuracy: 1e-5)
    }
}
