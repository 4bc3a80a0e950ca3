// The Attention module: construction rules, state-dict layout, processors' documented
// differences (attention_processor.py:Attention.__init__, attention_processor.py:AttnProcessor.__call__, docs/quirks.md). Numbers against diffusers itself are in
// Tests/python (golden fixtures); these tests check relations that hold in diffusers.
import DiffAttn
import DiffAttnKernels
import XCTest

final class AttentionModuleTests: XCTestCase {
    private func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SeededNumbers(state: seed)
        return Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in rng.next() })
    }

    private func module(_ edit: (inout AttentionConfig) -> Void = { _ in }) throws -> Attention {
        var c = AttentionConfig(queryDim: 32)
        c.heads = 4; c.dimHead = 8
        edit(&c)
        return try Attention(c)
    }

    private func run(_ a: Attention, _ kind: ProcessorKind, _ inputs: AttentionInputs) throws -> Tensor {
        try a.setProcessor(ProcessorConfig(kind: kind))
        return try a.forward(inputs)[0]
    }

    func testStateDictFollowsDiffusersRegistrationOrder() throws {
        let a = try module {
            $0.bias = true; $0.normNumGroups = 8; $0.spatialNormDim = 4; $0.qkNorm = .layerNorm
            $0.crossAttentionNorm = .layerNorm; $0.crossAttentionDim = 16
        }
        XCTAssertEqual(a.parameters.specs.map(\.name), [
            "group_norm.weight", "group_norm.bias",
            "spatial_norm.norm_layer.weight", "spatial_norm.norm_layer.bias",
            "spatial_norm.conv_y.weight", "spatial_norm.conv_y.bias", "spatial_norm.conv_b.weight", "spatial_norm.conv_b.bias",
            "norm_q.weight", "norm_q.bias", "norm_k.weight", "norm_k.bias", "norm_cross.weight", "norm_cross.bias",
            "to_q.weight", "to_q.bias", "to_k.weight", "to_k.bias", "to_v.weight", "to_v.bias",
            "to_out.0.weight", "to_out.0.bias",
        ])
        XCTAssertEqual(a.parameters.spec(named: "to_k.weight")?.shape, [32, 16])
        XCTAssertEqual(a.parameters.spec(named: "spatial_norm.conv_y.weight")?.shape, [32, 4, 1, 1])
    }

    func testDerivedAttributesOfTheOutDimQuirk() throws {
        let a = try module { $0.dimHead = 16; $0.outDim = 40 }
        XCTAssertEqual(a.derived.heads, 2)
        XCTAssertEqual(a.derived.sliceableHeadDim, 4)
        XCTAssertEqual(a.derived.innerDim, 40)
        XCTAssertEqual(a.derived.scale, 0.25)
    }

    func testDefaultProcessorFollowsScaleQK() throws {
        XCTAssertEqual(try module().processor.kind, .attnProcessor2_0)
        XCTAssertEqual(try module { $0.scaleQK = false }.processor.kind, .attnProcessor)
        XCTAssertEqual(try module { $0.addedKVProjDim = 32 }.processor.kind, .attnProcessor2_0)
    }

    func testConstructionErrorsInDiffusersOrder() {
        func kind(_ edit: (inout AttentionConfig) -> Void) -> DiffAttnError.Kind? {
            do { _ = try module(edit); return nil } catch { return (error as? DiffAttnError)?.kind }
        }
        XCTAssertEqual(kind { $0.onlyCrossAttention = true; $0.normNumGroups = 5 }, .value)
        XCTAssertEqual(kind { $0.normNumGroups = 5 }, .value)
        XCTAssertEqual(kind { $0.qkNorm = .rmsNormAcrossHeads }, .type)
        XCTAssertEqual(kind { $0.qkNorm = .l2; $0.addedKVProjDim = 8 }, .value)
        XCTAssertEqual(kind { $0.heads = 0 }, .invalidArgument)
        XCTAssertNil(kind { $0.qkNorm = .rmsNormAcrossHeads; $0.kvHeads = 4 })
    }

    func testClassicAndSDPAProcessorsAgreeWhenTheScalesDo() throws {
        let a = try module { $0.normNumGroups = 4; $0.residualConnection = true; $0.rescaleOutputFactor = 2 }
        let x = random([2, 32, 3, 5], seed: 1)
        let mask = AttentionMask.additive(Tensor(shape: [2, 1, 15], storage: (0..<30).map { $0 % 4 == 0 ? -10000 : 0 }))
        let inputs = AttentionInputs(hiddenStates: x, attentionMask: mask)
        assertClose(try run(a, .attnProcessor, inputs).storage, try run(a, .attnProcessor2_0, inputs).storage,
                    tolerance: 1e-5, "AttnProcessor vs AttnProcessor2_0")
    }

    func testSDPAProcessorIgnoresAttnScale() throws {
        let a = try module { $0.scaleQK = false }
        let inputs = AttentionInputs(hiddenStates: random([1, 6, 32], seed: 2) * 4)
        let classic = try run(a, .attnProcessor, inputs), sdpa = try run(a, .attnProcessor2_0, inputs)
        let difference = zip(classic.storage, sdpa.storage).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(difference, 1e-3, "scale_qk=False must change AttnProcessor but not AttnProcessor2_0")
    }

    func testFullyMaskedRowsAreNaNInClassicAndZeroInSDPA() throws {
        let a = try module { $0.outBias = false }
        var m = [Float](repeating: 0, count: 2 * 4 * 4)
        for j in 0..<4 { m[4 + j] = -.infinity }   // batch 0, query 1: every key removed
        let inputs = AttentionInputs(hiddenStates: random([2, 4, 32], seed: 3), attentionMask: .additive(Tensor(shape: [2, 4, 4], storage: m)))
        let classic = try run(a, .attnProcessor, inputs), sdpa = try run(a, .attnProcessor2_0, inputs)
        XCTAssertTrue(classic.storage[32..<64].allSatisfy(\.isNaN))
        XCTAssertTrue(sdpa.storage[32..<64].allSatisfy { $0 == 0 })
        XCTAssertFalse(classic.storage[0..<32].contains(where: \.isNaN))
    }

    func testBooleanMasksOnlyInSDPA() throws {
        let a = try module()
        let inputs = AttentionInputs(hiddenStates: random([2, 4, 32], seed: 4),
                                     attentionMask: .boolean(BoolTensor(shape: [2, 4], storage: [1, 1, 0, 1, 1, 0, 1, 1])))
        XCTAssertNoThrow(try run(a, .attnProcessor2_0, inputs))
        XCTAssertThrowsError(try run(a, .attnProcessor, inputs)) { XCTAssertEqual(($0 as? DiffAttnError)?.kind, .dtype) }
    }

    func testHeadSplitRoundTrip() throws {
        let a = try module()
        let t = random([2, 5, 32], seed: 5)
        let split = try a.headToBatchDim(t)
        XCTAssertEqual(split.shape, [8, 5, 8])
        XCTAssertEqual(try a.batchToHeadDim(split).storage, t.storage)
        XCTAssertEqual(try a.headToBatchDim(t, outDim: 4).shape, [2, 4, 5, 8])
    }

    func testAttentionScoresAreProbabilities() throws {
        let a = try module()
        let p = try a.getAttentionScores(query: random([3, 4, 8], seed: 6), key: random([3, 6, 8], seed: 7), mask: nil)
        for row in 0..<12 {
            XCTAssertEqual(p.storage[(row * 6)..<(row * 6 + 6)].reduce(0, +), 1, accuracy: 1e-5)
        }
    }

    func testResultsDoNotDependOnThreadCount() throws {
        let a = try module()
        let inputs = AttentionInputs(hiddenStates: random([2, 70, 32], seed: 8))
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        Parallel.threadCount = 1
        let one = try a.forward(inputs)[0]
        Parallel.threadCount = 3
        XCTAssertEqual(try a.forward(inputs)[0].storage, one.storage)
    }
}

private func * (t: Tensor, s: Float) -> Tensor { Tensor(shape: t.shape, storage: t.storage.map { $0 * s }) }
