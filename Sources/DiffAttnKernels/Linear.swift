// The projections' GEMM, `y = x·Wᵀ + b`. On AVX-512 it runs our own micro-kernel
// (LinearKernels.swift), which reaches about twice what Debian's OpenBLAS gets here with its
// AVX2 kernels; elsewhere, row blocks of single-threaded OpenBLAS GEMMs. Either way the work is
// cut into fixed blocks spread over `Parallel`, so every output element is reduced the same way
// whatever the thread count (OpenBLAS's own threading splits differently for different thread
// counts, and its results move by an ulp).
@_exported import enum DiffAttnKernelBodies.LinearWeightFormat
import DiffAttnKernelBodies
import DiffAttnKernelsAVX512
import CDiffAttnCPUID

/// `y = x · Wᵀ + b` over the last axis: x is `rows × inFeatures`, W is `outFeatures × inFeatures`.
public func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int,
                   into y: UnsafeMutablePointer<Float>) {
    linear(x, rows: rows, inFeatures: inFeatures, weight: UnsafeRawPointer(weight), format: .float32,
           bias: bias, outFeatures: outFeatures, into: y)
}

/// The same with the weight stored as `format` (16-bit formats: `UInt16` bit patterns, widened to
/// float32 chunk by chunk inside the GEMM, so only a small panel is ever held in float32).
public func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                   weight: UnsafeRawPointer, format: LinearWeightFormat, bias: UnsafePointer<Float>?,
                   outFeatures: Int, into y: UnsafeMutablePointer<Float>) {
    guard rows > 0, outFeatures > 0 else { return }
    if inFeatures == 0 {
        for r in 0..<rows { for o in 0..<outFeatures { y[r * outFeatures + o] = bias?[o] ?? 0 } }
        return
    }
    if KernelPath.selected == .avx512 {
        let lanes = LinearGeometry.lanes, panel = LinearGeometry.panel
        let rowBlocks = (rows + lanes - 1) / lanes, panels = (outFeatures + panel - 1) / panel
        let scratch = ScratchSlots(floats: LinearGeometry.scratchFloats)
        Parallel.forEachWorker(rowBlocks * panels) { task, worker in
            let r0 = task / panels * lanes, o0 = task % panels * panel
            linearBlockAVX512(x: x + r0 * inFeatures, rows: min(lanes, rows - r0), inFeatures: inFeatures,
                              weight: weight, format: format.rawValue, bias: bias, outFeatures: outFeatures,
                              o0: o0, cols: min(panel, outFeatures - o0), y: y + r0 * outFeatures,
                              scratch: scratch.buffer(for: worker))
        }
        withExtendedLifetime(scratch) {}
        return
    }
    useSingleThreadedBLAS()
    var widened: UnsafeMutablePointer<Float>?
    if format != .float32 {   // no AVX-512: widen the whole layer once for OpenBLAS
        let count = outFeatures * inFeatures
        let w = KernelScratch.allocate(floats: count)
        widenToFloat32(weight.assumingMemoryBound(to: UInt16.self), count: count, format: format, into: w)
        widened = w
    }
    defer { if let widened { KernelScratch.free(widened, floats: outFeatures * inFeatures) } }
    let w32 = UnsafePointer(widened) ?? weight.assumingMemoryBound(to: Float.self)
    let blockRows = 128
    Parallel.forEach((rows + blockRows - 1) / blockRows) { block in
        let r0 = block * blockRows, count = min(blockRows, rows - r0)
        let out = y + r0 * outFeatures
        if let bias {
            for r in 0..<count { (out + r * outFeatures).update(from: bias, count: outFeatures) }
        }
        sgemm(transposeA: false, transposeB: true, m: count, n: outFeatures, k: inFeatures,
              alpha: 1, a: x + r0 * inFeatures, lda: inFeatures, b: w32, ldb: inFeatures,
              beta: bias == nil ? 0 : 1, c: out, ldc: outFeatures)
    }
}

/// One block of `linear` on the calling thread: rows (≤ 64) × all outputs, float32 weight, no bias;
/// `scratch` holds `LinearGeometry.scratchFloats`. For kernels that run their own small GEMMs
/// inside a task (linear attention). Falls back to a single-threaded sgemm without AVX-512.
func linearTile(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: UnsafePointer<Float>,
                outFeatures: Int, into y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
    if KernelPath.selected == .avx512 {
        var o0 = 0
        while o0 < outFeatures {
            linearBlockAVX512(x: x, rows: rows, inFeatures: inFeatures, weight: UnsafeRawPointer(weight), format: 0,
                              bias: nil, outFeatures: outFeatures, o0: o0,
                              cols: min(LinearGeometry.panel, outFeatures - o0), y: y, scratch: scratch)
            o0 += LinearGeometry.panel
        }
    } else {
        sgemm(transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures, alpha: 1, a: x,
              lda: inFeatures, b: weight, ldb: inFeatures, beta: 0, c: y, ldc: outFeatures)
    }
}

/// Widens 16-bit floats (bf16 or fp16 bit patterns) to float32.
public func widenToFloat32(_ src: UnsafePointer<UInt16>, count: Int, format: LinearWeightFormat,
                           into dst: UnsafeMutablePointer<Float>) {
    switch format {
    case .float32: dst.update(from: UnsafeRawPointer(src).assumingMemoryBound(to: Float.self), count: count)
    case .bfloat16, .float16: widenRow(src, count, format.rawValue, into: dst)
    }
}

/// Narrows float32 to 16-bit storage, rounding to nearest even (layerwise casting's storage step).
/// bf16 uses the AVX-512 BF16 conversion instruction when the CPU has it, else the same rounding
/// in portable code (both give identical bits; NaN stays NaN).
public func narrowFromFloat32(_ src: UnsafePointer<Float>, count: Int, format: LinearWeightFormat,
                              into dst: UnsafeMutablePointer<UInt16>) {
    switch format {
    case .float32:
        preconditionFailure("narrowFromFloat32 needs a 16-bit format")
    case .bfloat16:
        if CPUFeatures.current.avx512bf16 {
            diffattn_narrow_bf16_avx512(src, dst, count)
            return
        }
        for i in 0..<count { dst[i] = bfloat16Bits(src[i]) }
    case .float16:
        for i in 0..<count { dst[i] = Float16(src[i]).bitPattern }
    }
}

/// float32 → bfloat16 bits, round to nearest even; NaN → quiet NaN (vcvtneps2bf16's rule).
@inline(__always)
public func bfloat16Bits(_ x: Float) -> UInt16 { roundedBFloat16(x) }

/// Whether this CPU narrows to bf16 with the AVX-512 BF16 instructions (else the portable path).
public var hasBFloat16Instructions: Bool { CPUFeatures.current.avx512bf16 }
