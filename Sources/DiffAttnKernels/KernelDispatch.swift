// The one switch from kernel path to compiled entry point.
import DiffAttnKernelBodies
import DiffAttnKernelsAVX2
import DiffAttnKernelsAVX512
import Synchronization

let selectedRaw = Atomic<Int>(KernelPath.best.rawValue)

@inline(__always)
func runAttentionTile(_ tile: AttentionTile) {
    switch KernelPath.selected {
    case .avx512: attentionTileAVX512(tile)
    case .avx2: attentionTileAVX2(tile)
    case .portable: attentionTileBody(tile, wide: false, fused: false, combine: combinePortable, normalise: normalisePortable)
    }
}

@inline(never)
private func combinePortable(_ t: AttentionTile, _ scores: UnsafeMutablePointer<Float>, _ blockStart: Int, _ count: Int,
                             _ maskTile: UnsafeMutablePointer<Float>?, _ flash: Bool,
                             _ runningMax: UnsafeMutablePointer<Float>, _ runningSum: UnsafeMutablePointer<Float>,
                             _ alpha: UnsafeMutablePointer<Float>) {
    combineScores(t, scores: scores, blockStart: blockStart, count: count, maskTile: maskTile, flash: flash,
                  runningMax: runningMax, runningSum: runningSum, alpha: alpha, fused: false)
}

@inline(never)
private func normalisePortable(_ t: AttentionTile, _ scores: UnsafeMutablePointer<Float>) {
    normaliseRows(t, scores: scores, fused: false)
}

@inline(__always)
func runSoftmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int) {
    switch KernelPath.selected {
    case .avx512: softmaxRowsAVX512(p, rows: rows, columns: columns, stride: stride)
    case .avx2: softmaxRowsAVX2(p, rows: rows, columns: columns, stride: stride)
    case .portable: softmaxRowsBody(p, rows: rows, columns: columns, stride: stride, fused: false)
    }
}

/// Runs the FMA-throughput probe of `path` on the calling thread: `iterations · 384` flops.
/// For the benchmark's peak measurement; returns a value to keep the work alive.
@inline(never) public func fmaThroughputProbe(path: KernelPath, iterations: Int, seed: Float) -> Float {
    switch path {
    case .avx512: return fmaThroughputAVX512(iterations: iterations, seed: seed)
    case .avx2: return fmaThroughputAVX2(iterations: iterations, seed: seed)
    case .portable: return fmaThroughputBody(iterations: iterations, seed: seed, fused: false)
    }
}

/// Flops one `fmaThroughputProbe` iteration performs.
public let fmaProbeFlopsPerIteration = 12 * 16 * 2
