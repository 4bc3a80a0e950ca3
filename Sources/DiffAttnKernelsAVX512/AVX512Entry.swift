// AVX-512 build of the shared kernel bodies: this target is compiled with -target-cpu
// skylake-avx512, so SIMD16<Float> is one zmm register and the wide 4×6 tiles fit in 32 of them.
// Call only when CPU features report avx512f (the dispatcher checks).
import DiffAttnKernelBodies

@inline(never) public func attentionTileAVX512(_ tile: AttentionTile) {
    attentionTileBody(tile, wide: true, fused: true, combine: combineAVX512, normalise: normaliseAVX512)
}

@inline(never) func combineAVX512(_ t: AttentionTile, _ scores: UnsafeMutablePointer<Float>, _ blockStart: Int, _ count: Int,
                               _ maskTile: UnsafeMutablePointer<Float>?, _ flash: Bool,
                               _ runningMax: UnsafeMutablePointer<Float>, _ runningSum: UnsafeMutablePointer<Float>,
                               _ alpha: UnsafeMutablePointer<Float>) {
    combineScores(t, scores: scores, blockStart: blockStart, count: count, maskTile: maskTile, flash: flash,
                  runningMax: runningMax, runningSum: runningSum, alpha: alpha, fused: true)
}

@inline(never) func normaliseAVX512(_ t: AttentionTile, _ scores: UnsafeMutablePointer<Float>) {
    normaliseRows(t, scores: scores, fused: true)
}

@inline(never) public func softmaxRowsAVX512(_ p: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int) {
    softmaxRowsBody(p, rows: rows, columns: columns, stride: stride, fused: true)
}

@inline(never) public func fmaThroughputAVX512(iterations: Int, seed: Float) -> Float {
    fmaThroughputBody(iterations: iterations, seed: seed, fused: true)
}

@inline(never) public func linearBlockAVX512(x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                                             weight: UnsafeRawPointer, format: Int, bias: UnsafePointer<Float>?,
                                             outFeatures: Int, o0: Int, cols: Int, y: UnsafeMutablePointer<Float>,
                                             scratch: UnsafeMutablePointer<Float>) {
    linearBlockBody(x: x, rows: rows, inFeatures: inFeatures, weight: weight, format: format, bias: bias,
                    outFeatures: outFeatures, o0: o0, cols: cols, y: y, scratch: scratch, true)
}
