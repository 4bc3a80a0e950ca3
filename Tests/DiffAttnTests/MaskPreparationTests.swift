// diffusers' prepare_attention_mask, shape table and quirks (attention_processor.py:Attention.prepare_attention_mask).
import DiffAttn
import DiffAttnKernels
import XCTest

final class MaskPreparationTests: XCTestCase {
    private func additive(_ shape: [Int]) -> AttentionMask {
        .additive(Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { Float($0) }))
    }

    func testShapeTableOfTheSpec() throws {
        // (input shape, out_dim 3 result, out_dim 4 result) for B=2, heads=4, target 7.
        let table: [([Int], [Int], [Int])] = [
            ([2, 7], [8, 7], [2, 4, 7]),
            ([2, 1, 7], [8, 1, 7], [2, 4, 1, 7]),
            ([2, 5, 7], [8, 5, 7], [2, 4, 5, 7]),
            ([1, 1, 7], [4, 1, 7], [1, 4, 1, 7]),
            ([2, 1, 4], [8, 1, 11], [2, 4, 1, 11]),
        ]
        for (input, three, four) in table {
            XCTAssertEqual(try prepareAttentionMask(additive(input), targetLength: 7, batchSize: 2, heads: 4).shape, three, "\(input)")
            XCTAssertEqual(try prepareAttentionMask(additive(input), targetLength: 7, batchSize: 2, heads: 4, outDim: 4).shape, four, "\(input)")
        }
    }

    func testPaddingAppendsTargetLengthZerosNotTheMissingAmount() throws {
        let m = try prepareAttentionMask(additive([1, 1, 2]), targetLength: 3, batchSize: 1, heads: 1)
        guard case .additive(let t) = m else { return XCTFail("dtype changed") }
        XCTAssertEqual(t.shape, [1, 1, 5])
        XCTAssertEqual(t.storage, [0, 1, 0, 0, 0])
    }

    func testBooleanMasksPadWithFalse() throws {
        let m = try prepareAttentionMask(.boolean(BoolTensor(shape: [1, 2], storage: [1, 1])), targetLength: 3,
                                         batchSize: 1, heads: 1)
        guard case .boolean(let t) = m else { return XCTFail("dtype changed") }
        XCTAssertEqual(t.storage, [1, 1, 0, 0, 0])
    }

    func testRowsRepeatPerHeadConsecutively() throws {
        let m = try prepareAttentionMask(additive([2, 1, 2]), targetLength: 2, batchSize: 2, heads: 3)
        guard case .additive(let t) = m else { return XCTFail("dtype changed") }
        XCTAssertEqual(t.storage, [0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3])
    }

    func testAbsurdSizesAreRejectedBeforeAllocating() {
        XCTAssertThrowsError(try prepareAttentionMask(additive([2, 1, 7]), targetLength: 1 << 24, batchSize: 1 << 20,
                                                      heads: 1 << 10)) { error in
            XCTAssertEqual((error as? DiffAttnError)?.kind, .outOfMemory)
        }
    }
}
