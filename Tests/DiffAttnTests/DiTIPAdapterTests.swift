// The DiT IP-Adapter processors (attention_processor.py:SD3IPAdapterJointAttnProcessor2_0, transformer_flux.py:FluxIPAdapterAttnProcessor.__call__): the relations diffusers implies
// between them and the plain joint processors. Numbers against diffusers are in Tests/python.
import DiffAttn
import DiffAttnKernels
import XCTest

final class DiTIPAdapterTests: XCTestCase {
    private func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SeededNumbers(state: seed)
        return Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in rng.next() })
    }

    private func sd3Module() throws -> Attention {
        var c = AttentionConfig(queryDim: 32)
        c.heads = 2; c.dimHead = 16; c.addedKVProjDim = 24; c.outDim = 32; c.contextPreOnly = false
        c.bias = true; c.qkNorm = .rmsNorm; c.eps = 1e-6
        return try Attention(c)
    }

    private func sd3Processor(scale: Float = 0.5) -> ProcessorConfig {
        var p = ProcessorConfig(kind: .sd3IPAdapterJointAttnProcessor2_0)
        p.hiddenSize = 32; p.ipHiddenStatesDim = 20; p.headDim = 16; p.timestepsEmbDim = 12
        p.scale = [.uniform(scale)]
        return p
    }

    private func fluxModule() throws -> Attention {
        var c = AttentionConfig(queryDim: 32)
        c.moduleClass = .fluxAttention
        c.heads = 2; c.dimHead = 16; c.addedKVProjDim = 32; c.outDim = 32; c.contextPreOnly = false; c.bias = true
        return try Attention(c)
    }

    private func fluxProcessor(scales: [Float]) -> ProcessorConfig {
        var p = ProcessorConfig(kind: .fluxIPAdapterAttnProcessor)
        p.hiddenSize = 32; p.crossAttentionDim = 24; p.numTokens = scales.map { _ in 3 }; p.scale = scales.map { .uniform($0) }
        return p
    }

    private func assertClose(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        let worst = zip(a.storage, b.storage).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(worst, 1e-5, what, file: file, line: line)
    }

    func testSD3ProcessorWeightsInDiffusersOrder() throws {
        let a = try sd3Module()
        try a.setProcessor(sd3Processor())
        XCTAssertEqual(a.parameters.specs.map(\.name).filter { $0.hasPrefix("processor.") }, [
            "processor.norm_ip.linear.weight", "processor.norm_ip.linear.bias", "processor.to_k_ip.weight",
            "processor.to_v_ip.weight", "processor.norm_q.weight", "processor.norm_k.weight", "processor.norm_ip_k.weight",
        ])
        XCTAssertEqual(a.parameters.spec(named: "processor.norm_ip.linear.weight")?.shape, [40, 12])
        XCTAssertEqual(ProcessorConfig(kind: .sd3IPAdapterJointAttnProcessor2_0).scale, [.uniform(0.5)])
    }

    func testSD3WithoutImageTokensOrScaleZeroIsJointAttention() throws {
        let a = try sd3Module()
        var inputs = AttentionInputs(hiddenStates: random([2, 7, 32], seed: 1), encoderHiddenStates: random([2, 5, 24], seed: 2),
                                     temb: random([2, 12], seed: 3))
        try a.setProcessor(ProcessorConfig(kind: .jointAttnProcessor2_0))
        let joint = try a.forward(inputs)
        try a.setProcessor(sd3Processor())
        for (x, y) in zip(try a.forward(inputs), joint) { assertClose(x, y, "no ip_hidden_states") }
        inputs.ipHiddenStates = [random([2, 3, 20], seed: 4)]
        let withIP = try a.forward(inputs)
        XCTAssertNotEqual(withIP[0].storage, joint[0].storage)
        assertClose(withIP[1], joint[1], "the text stream never sees the image tokens")
        try a.updateProcessor(sd3Processor(scale: 0))
        for (x, y) in zip(try a.forward(inputs), joint) { assertClose(x, y, "scale 0") }
    }

    func testFluxAdapterAddsAThirdOutputLinearInItsScales() throws {
        let a = try fluxModule()
        var inputs = AttentionInputs(hiddenStates: random([2, 7, 32], seed: 5), encoderHiddenStates: random([2, 5, 32], seed: 6))
        try a.setProcessor(ProcessorConfig(kind: .fluxAttnProcessor))
        let plain = try a.forward(inputs)
        inputs.ipHiddenStates = [random([2, 3, 24], seed: 7), random([2, 3, 24], seed: 8)]
        try a.setProcessor(fluxProcessor(scales: [1, 0]))
        let first = try a.forward(inputs)
        XCTAssertEqual(first.count, 3)
        assertClose(first[0], plain[0], "image output unchanged")
        assertClose(first[1], plain[1], "text output unchanged")
        try a.updateProcessor(fluxProcessor(scales: [2, 0]))
        let doubled = try a.forward(inputs)[2]
        assertClose(doubled, Tensor(shape: first[2].shape, storage: first[2].storage.map { 2 * $0 }), "ip_out is scale-linear")
        // Without text, FluxAttnProcessor fails on a module with added projections; the IP-Adapter
        // guards its join by the encoder states and returns the raw attention (transformer_flux.py:FluxAttnProcessor.__call__, transformer_flux.py:FluxIPAdapterAttnProcessor.__call__).
        var imageOnly = inputs
        imageOnly.encoderHiddenStates = nil
        XCTAssertEqual(try a.forward(imageOnly).map(\.shape), [[2, 7, 32]])
        try a.setProcessor(ProcessorConfig(kind: .fluxAttnProcessor))
        XCTAssertThrowsError(try a.forward(imageOnly))
    }
}
