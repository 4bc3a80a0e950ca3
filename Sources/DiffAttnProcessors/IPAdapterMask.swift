import DiffAttnKernels
import DiffAttnModule

/// diffusers' `IPAdapterMaskProcessor.downsample` (image_processor.py:IPAdapterMaskProcessor.downsample): a (1, h, w) region mask resized
/// (bicubic, torch's convention) to a grid of about `queries` cells matching its aspect ratio,
/// flattened, padded or cut to `queries`, and broadcast to (batch, queries, width) — returned
/// as one value per (batch, query), since every channel gets the same value.
func downsampleRegionMask(_ mask: Tensor, image: Int, batch: Int, queries: Int, halfPrecision: Bool) throws -> [Float] {
    let (h, w) = (mask.shape[2], mask.shape[3])
    let ratio = Double(w) / Double(h)
    var rows = Int((Double(queries) / ratio).squareRoot())
    guard rows > 0 else {
        throw DiffAttnError.value("ip_adapter_masks: a \(h)×\(w) mask cannot be fitted to \(queries) query tokens (integer division by zero in diffusers)")
    }
    if queries % rows != 0 { rows += 1 }
    let cols = queries / rows
    var plane = Array(mask.storage[(image * h * w)..<((image + 1) * h * w)])
    // The xFormers processor converts masks to float16 before resizing (attention_processor.py:IPAdapterAttnProcessor.__call__).
    if halfPrecision { plane = plane.map { Float(Float16($0)) } }
    var resized = bicubicResize(plane, height: h, width: w, toHeight: rows, toWidth: cols,
                                weightDtype: halfPrecision ? { Float(Float16($0)) } : { $0 })
    if halfPrecision { resized = resized.map { Float(Float16($0)) } }
    var flat = [Float](repeating: 0, count: queries)   // padded with zeros, or cut, to `queries`
    for i in 0..<min(queries, resized.count) { flat[i] = resized[i] }
    return Array([[Float]](repeating: flat, count: batch).joined())
}

/// torch's bicubic interpolation (align_corners=False, A = −0.75, clamped taps, no antialias),
/// in torch's CPU arithmetic: float32 coefficients stored in the tensor's dtype (`weightDtype`
/// rounds them — float16 for a half-precision mask), width taps summed first, then height taps.
func bicubicResize(_ x: [Float], height: Int, width: Int, toHeight: Int, toWidth: Int,
                   weightDtype: (Float) -> Float = { $0 }) -> [Float] {
    func taps(_ input: Int, _ output: Int) -> [(index: [Int], weight: [Float])] {
        let r = Float(input) / Float(output), a: Float = -0.75
        func near(_ d: Float) -> Float { ((a + 2) * d - (a + 3)) * d * d + 1 }
        func far(_ d: Float) -> Float { ((a * d - 5 * a) * d + 8 * a) * d - 4 * a }
        return (0..<output).map { i in
            let src = r * (Float(i) + 0.5) - 0.5
            let x0 = src.rounded(.down), t = src - x0
            let weights = [far(t + 1), near(t), near(1 - t), far((1 - t) + 1)].map(weightDtype)
            let index = (-1...2).map { min(max(Int(x0) + $0, 0), input - 1) }
            return (index, weights)
        }
    }
    let rowTaps = taps(height, toHeight), colTaps = taps(width, toWidth)
    var out = [Float](repeating: 0, count: toHeight * toWidth)
    for (i, rt) in rowTaps.enumerated() {
        for (j, ct) in colTaps.enumerated() {
            var total: Float = 0
            for ky in 0..<4 {
                let row = rt.index[ky] * width
                var inner = x[row + ct.index[0]] * ct.weight[0]
                for kx in 1..<4 { inner += x[row + ct.index[kx]] * ct.weight[kx] }
                total = ky == 0 ? inner * rt.weight[0] : total + inner * rt.weight[ky]
            }
            out[i * toWidth + j] = total
        }
    }
    return out
}
