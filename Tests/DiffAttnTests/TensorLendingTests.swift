// Tensors over lent memory (NDArray.init(shape:lending:)): read in place, never written, and a copy
// for whoever keeps one past the loan.
import DiffAttnKernels
import XCTest

final class TensorLendingTests: XCTestCase {
    func testReadsInPlaceAndWritesGoToAPrivateCopy() {
        var memory: [Float] = [1, 2, 3, 4, 5, 6]
        memory.withUnsafeBufferPointer { caller in
            let loan = LentElements(base: caller.baseAddress!, count: 6)
            let t = Tensor(shape: [2, 3], lending: loan)
            t.withUnsafeElements { XCTAssertEqual($0.baseAddress, caller.baseAddress) }   // no copy
            let view = t.reshaped([3, 2])
            view.withUnsafeElements { XCTAssertEqual($0.baseAddress, caller.baseAddress) }
            var written = t
            written.storage[0] = 100
            XCTAssertEqual(caller[0], 1)                      // the caller's memory is untouched
            XCTAssertEqual(written.storage, [100, 2, 3, 4, 5, 6])
            XCTAssertEqual(t.storage, [1, 2, 3, 4, 5, 6])     // the others still read the loan
            loan.endLoan()
        }
    }

    func testATensorKeptPastTheLoanReadsWhatItSawThen() {
        var memory: [Float] = [1, 2, 3]
        var kept: Tensor?
        memory.withUnsafeBufferPointer { caller in
            let loan = LentElements(base: caller.baseAddress!, count: 3)
            kept = Tensor(shape: [3], lending: loan)
            loan.endLoan()
        }
        memory[0] = -7   // the caller reuses its memory after the call
        XCTAssertEqual(kept!.storage, [1, 2, 3])
        kept!.withUnsafeElements { XCTAssertEqual(Array($0), [1, 2, 3]) }
    }
}
