// Vector helpers shared by every ISA build of the kernels. They are @inlinable and
// @inline(__always) so that each ISA target (compiled with its own -target-cpu) gets its own
// machine code for them; on their own they carry no ISA.

public typealias Float16Lanes = SIMD16<Float>

/// `acc + a·b`. `fused` is a literal at every call site so the branch folds away: true emits an FMA,
/// false a multiply and an add (baseline x86-64 has no FMA, and llvm.fma would become a libm call).
@_transparent
public func multiplyAdd(_ acc: Float16Lanes, _ a: Float16Lanes, _ b: Float16Lanes, _ fused: Bool) -> Float16Lanes {
    fused ? acc.addingProduct(a, b) : acc + a * b
}

@_transparent
public func loadLanes(_ p: UnsafePointer<Float>) -> Float16Lanes {
    UnsafeRawPointer(p).loadUnaligned(as: Float16Lanes.self)
}

@_transparent
public func loadLanes(_ p: UnsafeMutablePointer<Float>) -> Float16Lanes {
    UnsafeRawPointer(p).loadUnaligned(as: Float16Lanes.self)
}

@_transparent
public func storeLanes(_ p: UnsafeMutablePointer<Float>, _ v: Float16Lanes) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float16Lanes.self)
}

@_transparent
public func lanewiseMax(_ a: Float16Lanes, _ b: Float16Lanes) -> Float16Lanes {
    a.replacing(with: b, where: b .> a)
}

/// 2^x for x ≤ 0 (the only range softmax needs), relative error ~1e-7. x is clamped at -127,
/// where the rebuilt 2^n is +0, so exp2(-inf) = 0 without a second select (a mask used twice
/// makes LLVM split the whole polynomial into xmm pieces); a NaN stays NaN.
@_transparent
public func exp2Lanes(_ x: Float16Lanes, _ fused: Bool) -> Float16Lanes {
    let low = Float16Lanes(repeating: -127)
    let xc = x.replacing(with: low, where: x .< low)
    // Adding 1.5·2^23 rounds to the nearest integer and leaves it in the low mantissa bits.
    let magic = Float16Lanes(repeating: 12_582_912)
    let shifted = xc + magic
    let n = shifted - magic
    let f = xc - n                                   // f in [-0.5, 0.5]
    // Taylor series of e^(f·ln2) to degree 7; the truncation error at |f| = 0.5 is ~5e-9.
    var p = Float16Lanes(repeating: 1.5252734e-5)
    p = multiplyAdd(Float16Lanes(repeating: 1.5403530e-4), p, f, fused)
    p = multiplyAdd(Float16Lanes(repeating: 1.3333558e-3), p, f, fused)
    p = multiplyAdd(Float16Lanes(repeating: 9.6181291e-3), p, f, fused)
    p = multiplyAdd(Float16Lanes(repeating: 5.5504109e-2), p, f, fused)
    p = multiplyAdd(Float16Lanes(repeating: 0.24022651), p, f, fused)
    p = multiplyAdd(Float16Lanes(repeating: 0.69314718), p, f, fused)
    p = multiplyAdd(Float16Lanes(repeating: 1), p, f, fused)
    // shifted's bit pattern is 0x4B400000 + n; rebuild 2^n as (n + 127) << 23 (0 when n = -127).
    let bits = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &+ Int32(127 - 0x4B40_0000)
    let twoToN = unsafeBitCast(bits &<< 23, to: Float16Lanes.self)
    return p * twoToN
}

/// Scalar 2^x with the same polynomial, for row tails of the public softmax.
@_transparent
public func exp2Scalar(_ x: Float) -> Float {
    exp2Lanes(Float16Lanes(repeating: x), false)[0]
}
