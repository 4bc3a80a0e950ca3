// AVX2 + FMA build of the shared kernel bodies (-target-cpu haswell): SIMD16<Float> is two ymm
// registers, so the narrow 1×6 tiles are used to stay within 16 registers.
// Call only when CPU features report avx2 and fma (the dispatcher checks).
import DiffAttnKernelBodies

@inline(never) public func attentionTileAVX2(_ tile: AttentionTile) {
    attentionTileBody(tile, wide: false, fused: true, combine: combineAVX2, normalise: normaliseAVX2)
}

@inline(never) func combineAVX2(_ t: AttentionTile, _ scores: UnsafeMutablePointer<Float>, _ blockStart: Int, _ count: Int,
                               _ maskTile: UnsafeMutablePointer<Float>?, _ flash: Bool,
                               _ runningMax: UnsafeMutablePointer<Float>, _ runningSum: UnsafeMutablePointer<Float>,
                               _ alpha: UnsafeMutablePointer<Float>) {
    combineScores(t, scores: scores, blockStart: blockStart, count: count, maskTile: maskTile, flash: flash,
                  runningMax: runningMax, runningSum: runningSum, alpha: alpha, fused: true)
}

@inline(never) func normaliseAVX2(_ t: AttentionTile, _ scores: UnsafeMutablePointer<Float>) {
    normaliseRows(t, scores: scores, fused: true)
}

@inline(never) public func softmaxRowsAVX2(_ p: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int) {
    softmaxRowsBody(p, rows: rows, columns: columns, stride: stride, fused: true)
}

@inline(never) public func fmaThroughputAVX2(iterations: Int, seed: Float) -> Float {
    fmaThroughputBody(iterations: iterations, seed: seed, fused: true, wide: false)
}

@inline(never) public func int8AttentionTileAVX2(_ tile: AttentionTile, _ kv: Int8KeyValues) {
    int8AttentionTileBody(tile, kv, combine: combineAVX2)
}
