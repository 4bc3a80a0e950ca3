// Layerwise casting in the benchmark: the projection GEMM with its weight stored as bf16 or fp16
// (half the weight memory), widened inside the GEMM; speed and the error against float32 weights.
import DiffAttnKernels

func benchLayerwiseCasting(quick: Bool, fmaPeak: Double) {
    let rows = 2048, inF = 1536, outF = 1536
    let x = randomBuffer(rows * inF, seed: 1), w = randomBuffer(outF * inF, seed: 2)
    let reference = randomBuffer(rows * outF, seed: 3), y = randomBuffer(rows * outF, seed: 4)
    defer { [x, w, reference, y].forEach { $0.deallocate() } }
    print(pad("linear 2048×1536×1536 weights", 32, right: true) + pad("ms", 9) + pad("GFLOP/s", 10) + pad("/FMA", 7)
          + pad("weight MiB", 12) + pad("max rel err", 13))
    let flops = projectionFlops(rows, inF, outF)
    for format in [LinearWeightFormat.float32, .bfloat16, .float16] {
        let narrow = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: outF * inF)
        defer { narrow.deallocate() }
        if format != .float32 { narrowFromFloat32(w.baseAddress!, count: outF * inF, format: format, into: narrow.baseAddress!) }
        let weight = format == .float32 ? UnsafeRawPointer(w.baseAddress!) : UnsafeRawPointer(narrow.baseAddress!)
        let out = format == .float32 ? reference : y
        let seconds = bestTime(repeats: quick ? 2 : 5) {
            linear(x.baseAddress!, rows: rows, inFeatures: inF, weight: weight, format: format, bias: nil,
                   outFeatures: outF, into: out.baseAddress!)
        }
        var worst: Float = 0, scale: Float = 0
        for i in 0..<(rows * outF) { scale = max(scale, abs(reference[i])) }
        for i in 0..<(rows * outF) { worst = max(worst, abs(out[i] - reference[i])) }
        let bytes = outF * inF * (format == .float32 ? 4 : 2)
        let gflops = flops / seconds / 1e9
        print(pad(formatName(format), 32, right: true) + pad(fixed(seconds * 1e3, 1), 9) + pad(fixed(gflops, 1), 10)
              + pad(fixed(100 * gflops / fmaPeak, 0) + "%", 7) + pad(megabytes(bytes), 12)
              + pad(format == .float32 ? "—" : scientific(worst / scale), 13))
    }
    print("")
}

func formatName(_ f: LinearWeightFormat) -> String {
    switch f { case .float32: return "float32"; case .bfloat16: return "bfloat16"; case .float16: return "float16" }
}

func scientific(_ x: Float) -> String {
    guard x > 0 else { return "0" }
    var e = 0, m = Double(x)
    while m < 1 { m *= 10; e -= 1 }
    while m >= 10 { m /= 10; e += 1 }
    return fixed(m, 2) + "e" + String(e)
}
