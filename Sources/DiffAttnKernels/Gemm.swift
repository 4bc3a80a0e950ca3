import COpenBLAS

/// Row-major single-precision GEMM: `C = alpha · op(A) · op(B) + beta · C`.
/// `op(A)` is `m × k`, `op(B)` is `k × n`; leading dimensions are in elements.
/// A thin bridge so that nothing above this module names cblas.
@inline(__always)
public func sgemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        // BLAS would still scale C; do it here so callers need not special-case empty reductions.
        for i in 0..<m {
            let row = c + i * ldc
            for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
        }
        return
    }
    cblas_sgemm(CblasRowMajor,
                transposeA ? CblasTrans : CblasNoTrans,
                transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Number of threads OpenBLAS uses for one large GEMM (projections).
public var blasThreadCount: Int {
    get { Int(openblas_get_num_threads()) }
    set { openblas_set_num_threads(Int32(max(1, newValue))) }
}

/// The library parallelises GEMMs itself (see `linear`), so OpenBLAS runs each call on the
/// calling thread. Set once, on first use.
private let singleThreadedBLAS: Void = { openblas_set_num_threads(1) }()

public func useSingleThreadedBLAS() { _ = singleThreadedBLAS }
