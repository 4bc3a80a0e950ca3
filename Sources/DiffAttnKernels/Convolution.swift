// The convolutions of a multiscale attention projection, on channels-first (batch, channels,
// height, width) float32 images. Bias-free, stride 1.

/// Depthwise k×k convolution with zero padding ⌊k/2⌋ (each channel filtered by its own kernel);
/// `weight` is (channels, 1, k, k). Odd k keeps the spatial size; the output is (B, C, H', W')
/// with H' = H + 2⌊k/2⌋ − k + 1.
public func depthwiseConv2d(_ x: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
                            weight: UnsafePointer<Float>, kernel k: Int, into y: UnsafeMutablePointer<Float>) {
    let pad = k / 2
    let outH = height + 2 * pad - k + 1, outW = width + 2 * pad - k + 1
    Parallel.forEach(batch * channels) { task in
        let c = task % channels
        let src = x + task * height * width, dst = y + task * outH * outW
        let w = weight + c * k * k
        for oy in 0..<outH {
            let row = dst + oy * outW
            row.initialize(repeating: 0, count: outW)
            for ky in 0..<k {
                let iy = oy + ky - pad
                if iy < 0 || iy >= height { continue }
                let srcRow = src + iy * width
                for kx in 0..<k {
                    let wv = w[ky * k + kx]
                    let lo = max(0, pad - kx), hi = min(outW, width + pad - kx)
                    if lo >= hi { continue }
                    axpy(row + lo, wv, srcRow + lo + kx - pad, hi - lo)
                }
            }
        }
    }
}

/// Grouped 1×1 convolution: channels split into `groups` blocks of `channels/groups`, each
/// mixed by its own (block × block) matrix; `weight` is (channels, channels/groups, 1, 1).
/// `pixels` is H·W.
public func groupedPointwiseConv(_ x: UnsafePointer<Float>, batch: Int, channels: Int, pixels: Int, groups: Int,
                                 weight: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
    let block = channels / groups
    Parallel.forEach(batch * channels) { task in
        let b = task / channels, o = task % channels, g = o / block
        let dst = y + (b * channels + o) * pixels
        dst.initialize(repeating: 0, count: pixels)
        for i in 0..<block {
            axpy(dst, weight[o * block + i], x + (b * channels + g * block + i) * pixels, pixels)
        }
    }
}

/// Inference batch norm over channels-first data: `(x − mean)/√(var + eps)·w + b` per channel.
public func batchNormInference(_ x: UnsafeMutablePointer<Float>, batch: Int, channels: Int, pixels: Int,
                               mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, eps: Float) {
    for b in 0..<batch {
        for c in 0..<channels {
            let inv = 1 / (variance[c] + eps).squareRoot()
            let w = weight?[c] ?? 1, bb = bias?[c] ?? 0
            let p = x + (b * channels + c) * pixels
            for i in 0..<pixels { p[i] = (p[i] - mean[c]) * inv * w + bb }
        }
    }
}

/// y += alpha · x over n contiguous floats, 16 lanes at a time.
@inline(__always)
func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    var j = 0
    let av = SIMD16<Float>(repeating: alpha)
    while j + 16 <= n {
        let yv = UnsafeRawPointer(y + j).loadUnaligned(as: SIMD16<Float>.self)
        let xv = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(y + j).storeBytes(of: yv + av * xv, as: SIMD16<Float>.self)
        j += 16
    }
    while j < n { y[j] += alpha * x[j]; j += 1 }
}
