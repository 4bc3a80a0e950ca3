// AVX2 + FMA build of the shared kernel bodies (-target-cpu haswell): SIMD16<Float> is two ymm
// registers, so the narrow 1×6 tiles are used to stay within 16 registers.
// Call only when CPU features report avx2 and fma (the dispatcher checks).
import DiffAttnKernelBodies

@inline(never) public func attentionTileAVX2(_ tile: AttentionTile) {
    attentionTileBody(tile, wide: false, fused: true)
}

@inline(never) public func softmaxRowsAVX2(_ p: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int) {
    softmaxRowsBody(p, rows: rows, columns: columns, stride: stride, fused: true)
}

@inline(never) public func fmaThroughputAVX2(iterations: Int, seed: Float) -> Float {
    fmaThroughputBody(iterations: iterations, seed: seed, fused: true)
}
