import DiffAttnKernels
import DiffAttnModule

// SanaMultiscaleLinearAttention with SanaMultiscaleAttnProcessor2_0 (attention_processor.py:SanaMultiscaleLinearAttention … SanaMultiscaleAttnProcessor2_0.__call__): q/k/v as
// 1×1 projections, multiscale depthwise + grouped convolutions, ReLU linear attention over
// groups of 3·D consecutive channels, output projection and norm.
extension Attention {
    func planSanaMultiscale(_ inputs: AttentionInputs) throws -> [[Int]] {
        let x = inputs.hiddenStates
        guard config.moduleClass == .sanaMultiscaleLinearAttention else {
            throw DiffAttnError.state("SanaMultiscaleAttnProcessor2_0 runs on a SanaMultiscaleLinearAttention module, not \(config.moduleClass.name)")
        }
        guard x.rank == 4, x.shape[1] == config.queryDim else {
            throw DiffAttnError.shape("SanaMultiscaleLinearAttention expects (batch, \(config.queryDim), height, width), got \(describe(x.shape))")
        }
        let m = config.multiscale, (h, w) = (x.shape[2], x.shape[3])
        for k in m.kernelSizes where k % 2 == 0 {
            throw DiffAttnError.shape("kernel size \(k) changes the spatial size (\(h)×\(w) → \(h + 1)×\(w + 1)); the scales cannot be concatenated")
        }
        if m.normType == .layerNorm && w != m.outChannels {
            throw DiffAttnError.shape("norm_out (LayerNorm over the last axis) expects width \(m.outChannels), got \(w)")
        }
        if config.residualConnection && m.outChannels != config.queryDim {
            throw DiffAttnError.shape("residual_connection adds \(config.queryDim) input channels to \(m.outChannels) output channels")
        }
        _ = try checkedElementCount([x.shape[0], 3 * derived.innerDim * (1 + m.kernelSizes.count), h, w], "the multiscale activations")
        return [[x.shape[0], m.outChannels, h, w]]
    }

    func runSanaMultiscale(_ inputs: AttentionInputs) throws -> [Tensor] {
        let x = inputs.hiddenStates, m = config.multiscale
        let (b, h, w) = (x.shape[0], x.shape[2], x.shape[3]), n = h * w
        let inner = derived.innerDim, d = config.dimHead, scales = 1 + m.kernelSizes.count
        let tokens = tokensFromImage(x)
        // Z: (B, 3I·scales, N) channels-first; scale 0 holds [to_q | to_k | to_v].
        let zc = 3 * inner * scales
        var z = [Float](repeating: 0, count: b * zc * n)
        for (part, name) in ["to_q", "to_k", "to_v"].enumerated() {
            let y = try project(tokens, name)
            for bi in 0..<b { for t in 0..<n { for c in 0..<inner {
                z[(bi * zc + part * inner + c) * n + t] = y.storage[(bi * n + t) * inner + c]
            } } }
        }
        z.withUnsafeMutableBufferPointer { zp in
            let base = zp.baseAddress!
            var scratch = [Float](repeating: 0, count: b * 3 * inner * n)
            var z0 = [Float](repeating: 0, count: b * 3 * inner * n)
            for bi in 0..<b { for c in 0..<(3 * inner * n) { z0[bi * 3 * inner * n + c] = base[bi * zc * n + c] } }
            for (i, k) in m.kernelSizes.enumerated() {
                let projIn = weight("to_qkv_multiscale.\(i).proj_in.weight")!
                let projOut = weight("to_qkv_multiscale.\(i).proj_out.weight")!
                var scaled = [Float](repeating: 0, count: b * 3 * inner * n)
                z0.withUnsafeBufferPointer { src in scratch.withUnsafeMutableBufferPointer { mid in
                    projIn.withUnsafeElements { wp in
                        depthwiseConv2d(src.baseAddress!, batch: b, channels: 3 * inner, height: h, width: w,
                                        weight: wp.baseAddress!, kernel: k, into: mid.baseAddress!)
                    }
                    scaled.withUnsafeMutableBufferPointer { dst in projOut.withUnsafeElements { wp in
                        groupedPointwiseConv(mid.baseAddress!, batch: b, channels: 3 * inner, pixels: n, groups: 3 * derived.heads,
                                             weight: wp.baseAddress!, into: dst.baseAddress!)
                    }}
                }}
                for bi in 0..<b {
                    for c in 0..<(3 * inner * n) { base[(bi * zc + 3 * inner * (i + 1)) * n + c] = scaled[bi * 3 * inner * n + c] }
                }
            }
        }
        let groups = derived.heads * scales
        var attended = Tensor(shape: [b, n, groups * d], repeating: 0)   // channels-last for to_out
        z.withUnsafeBufferPointer { zp in attended.storage.withUnsafeMutableBufferPointer { op in
            let strides = Strides4(batch: zc * n, head: 3 * d * n, token: 1, channel: n)
            reluLinearAttention(LinearAttentionProblem(
                batch: b, heads: groups, queryLength: n, keyLength: n, headDim: d, valueDim: d,
                query: SDPAOperand(data: zp.baseAddress!, strides: strides),
                key: SDPAOperand(data: zp.baseAddress! + d * n, strides: strides),
                value: SDPAOperand(data: zp.baseAddress! + 2 * d * n, strides: strides),
                output: op.baseAddress!, outputStrides: Strides4(batch: n * groups * d, head: d, token: groups * d, channel: 1),
                eps: Float(config.eps)))
        }}
        var y = try project(attended, "to_out")   // (B, N, C_out)
        try normOut(&y, imageShape: [b, m.outChannels, h, w])
        var out = imageFromTokens(y, imageShape: [b, m.outChannels, h, w])
        if m.normType == .layerNorm { try layerNormLastAxis(&out) }
        finishOutput(&out, residual: x, addResidual: config.residualConnection, rescale: 1)
        return [out]
    }

    /// rms_norm over channels (weight and bias), or batch norm with running statistics.
    private func normOut(_ y: inout Tensor, imageShape: [Int]) throws {
        let c = imageShape[1], w = weight("norm_out.weight")!, bias = weight("norm_out.bias")!
        switch config.multiscale.normType {
        case .rmsNorm:
            let rows = y.count / c
            y.storage.withUnsafeMutableBufferPointer { p in w.withUnsafeElements { wp in
                rmsNormRows(p.baseAddress!, p.baseAddress!, rows: rows, width: c, eps: 1e-5, weight: wp.baseAddress!)
            }}
            for i in 0..<y.count { y.storage[i] += bias.storage[i % c] }
        case .batchNorm:
            var image = imageFromTokens(y, imageShape: imageShape)
            let mean = weight("norm_out.running_mean")!, variance = weight("norm_out.running_var")!
            image.storage.withUnsafeMutableBufferPointer { p in
                batchNormInference(p.baseAddress!, batch: imageShape[0], channels: c, pixels: imageShape[2] * imageShape[3],
                                   mean: mean.storage, variance: variance.storage, weight: w.storage, bias: bias.storage, eps: 1e-5)
            }
            y = tokensFromImage(image)
        case .layerNorm: break   // applied to the (B, C, H, W) tensor's last axis afterwards
        }
    }

    /// diffusers applies a LayerNorm norm_out to the channels-first image: over its width axis.
    private func layerNormLastAxis(_ x: inout Tensor) throws {
        let width = x.shape[3], w = weight("norm_out.weight")!, b = weight("norm_out.bias")!
        let rows = x.count / width
        x.storage.withUnsafeMutableBufferPointer { p in w.withUnsafeElements { wp in b.withUnsafeElements { bp in
            layerNormRows(p.baseAddress!, p.baseAddress!, rows: rows, width: width, eps: 1e-5, weight: wp.baseAddress!, bias: bp.baseAddress!)
        }}}
    }
}
