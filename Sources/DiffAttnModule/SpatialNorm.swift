import DiffAttnKernels

// diffusers' `SpatialNorm` (attention_processor.py:SpatialNorm): GroupNorm(32, eps 1e-6) of the feature map, modulated by
// 1×1 convolutions of the nearest-resized conditioning map `zq` (temb).
extension Attention {
    package func checkSpatialNormInputs(_ f: Tensor, _ zq: Tensor?) throws {
        guard f.rank == 4 else {
            throw DiffAttnError.shape("spatial_norm needs 4-D hidden_states (batch, channels, height, width), got shape \(describe(f.shape))")
        }
        guard let zq else { throw DiffAttnError.value("spatial_norm needs temb (batch, spatial_norm_dim, height, width); temb is None") }
        let z = config.spatialNormDim!
        guard zq.rank == 4, zq.shape[1] == z, zq.shape[2] > 0, zq.shape[3] > 0 else {
            throw DiffAttnError.shape("temb must have shape (batch, \(z), height, width) for spatial_norm, got \(describe(zq.shape))")
        }
        guard zq.shape[0] == f.shape[0] || zq.shape[0] == 1 else {
            throw DiffAttnError.shape("temb batch \(zq.shape[0]) does not broadcast to hidden_states batch \(f.shape[0])")
        }
        guard f.shape[1] == config.queryDim else {
            throw DiffAttnError.shape("hidden_states must have \(config.queryDim) channels (query_dim), got shape \(describe(f.shape))")
        }
    }

    package func spatialNorm(_ f: Tensor, _ zq: Tensor) -> Tensor {
        let w = SpatialNormWeights(
            normWeight: weight("spatial_norm.norm_layer.weight")!, normBias: weight("spatial_norm.norm_layer.bias")!,
            convYWeight: weight("spatial_norm.conv_y.weight")!, convYBias: weight("spatial_norm.conv_y.bias")!,
            convBWeight: weight("spatial_norm.conv_b.weight")!, convBBias: weight("spatial_norm.conv_b.bias")!)
        return applySpatialNorm(f, zq, w)
    }
}

/// The six weights of a `SpatialNorm(f_channels, zq_channels)`.
public struct SpatialNormWeights: Sendable {
    public var normWeight, normBias, convYWeight, convYBias, convBWeight, convBBias: Tensor
    public init(normWeight: Tensor, normBias: Tensor, convYWeight: Tensor, convYBias: Tensor,
                convBWeight: Tensor, convBBias: Tensor) {
        self.normWeight = normWeight; self.normBias = normBias
        self.convYWeight = convYWeight; self.convYBias = convYBias
        self.convBWeight = convBWeight; self.convBBias = convBBias
    }
}

/// `SpatialNorm.forward(f, zq)` on its own, with the checks torch's layers make.
public func spatialNorm(_ f: Tensor, _ zq: Tensor, _ w: SpatialNormWeights) throws -> Tensor {
    guard f.rank == 4, zq.rank == 4 else {
        throw DiffAttnError.shape("SpatialNorm takes 4-D f (batch, channels, height, width) and zq, got \(describe(f.shape)) and \(describe(zq.shape))")
    }
    let c = f.shape[1], z = zq.shape[1]
    guard c % 32 == 0, c > 0 else { throw DiffAttnError.value("num_channels (\(c)) must be divisible by num_groups (32)") }
    for (t, name) in [(w.normWeight, "norm_layer.weight"), (w.normBias, "norm_layer.bias"), (w.convYBias, "conv_y.bias"), (w.convBBias, "conv_b.bias")] where t.shape != [c] {
        throw DiffAttnError.shape("\(name) must have shape (\(c),), got \(describe(t.shape))")
    }
    for (t, name) in [(w.convYWeight, "conv_y.weight"), (w.convBWeight, "conv_b.weight")] where t.shape != [c, z, 1, 1] {
        throw DiffAttnError.shape("\(name) must have shape (\(c), \(z), 1, 1), got \(describe(t.shape))")
    }
    guard zq.shape[0] == f.shape[0] || zq.shape[0] == 1, zq.shape[2] > 0, zq.shape[3] > 0 else {
        throw DiffAttnError.shape("zq of shape \(describe(zq.shape)) does not fit f of shape \(describe(f.shape))")
    }
    _ = try checkedElementCount(f.shape, "SpatialNorm's output")
    return applySpatialNorm(f, zq, w)
}

private func applySpatialNorm(_ f: Tensor, _ zq: Tensor, _ sw: SpatialNormWeights) -> Tensor {
    let (b, c, h, w) = (f.shape[0], f.shape[1], f.shape[2], f.shape[3])
    let (zb, z, zh, zw) = (zq.shape[0], zq.shape[1], zq.shape[2], zq.shape[3])
    var normed = f
    normed.storage.withUnsafeMutableBufferPointer { p in
        sw.normWeight.withUnsafeElements { wp in
            sw.normBias.withUnsafeElements { bp in
                groupNorm(p.baseAddress!, p.baseAddress!, batch: b, tokens: h * w, channels: c, groups: 32,
                          batchStride: c * h * w, tokenStride: 1, channelStride: h * w, eps: 1e-6,
                          weight: wp.baseAddress!, bias: bp.baseAddress!)
            }
        }
    }
    // torch "nearest": source = min(floor(i · in/out), in − 1), the ratio in float32.
    let rows = (0..<h).map { min(Int((Float(zh) / Float(h)) * Float($0)), zh - 1) }
    let cols = (0..<w).map { min(Int((Float(zw) / Float(w)) * Float($0)), zw - 1) }
    let (cy, by, cb, bb) = (sw.convYWeight.storage, sw.convYBias.storage, sw.convBWeight.storage, sw.convBBias.storage)
    var out = normed
    var pixel = [Float](repeating: 0, count: z)
    for bi in 0..<b {
        let zbi = zb == 1 ? 0 : bi
        for i in 0..<h { for j in 0..<w {
            for k in 0..<z { pixel[k] = zq.storage[((zbi * z + k) * zh + rows[i]) * zw + cols[j]] }
            for ci in 0..<c {
                var y = by[ci], shift = bb[ci]
                for k in 0..<z {
                    y += cy[ci * z + k] * pixel[k]
                    shift += cb[ci * z + k] * pixel[k]
                }
                let idx = ((bi * c + ci) * h + i) * w + j
                out.storage[idx] = normed.storage[idx] * y + shift
            }
        } }
    }
    return out
}
