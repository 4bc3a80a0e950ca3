// AVX-512 build of the shared kernel bodies: this target is compiled with -target-cpu
// skylake-avx512, so SIMD16<Float> is one zmm register and the wide 4×6 tiles fit in 32 of them.
// Call only when CPU features report avx512f (the dispatcher checks).
import DiffAttnKernelBodies

@inline(never) public func attentionTileAVX512(_ tile: AttentionTile) {
    attentionTileBody(tile, wide: true, fused: true)
}

@inline(never) public func softmaxRowsAVX512(_ p: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int) {
    softmaxRowsBody(p, rows: rows, columns: columns, stride: stride, fused: true)
}

@inline(never) public func fmaThroughputAVX512(iterations: Int, seed: Float) -> Float {
    fmaThroughputBody(iterations: iterations, seed: seed, fused: true)
}
