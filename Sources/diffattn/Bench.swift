// `diffattn bench`: the machine's FMA and sgemm peaks measured in the same run, then SDPA GFLOP/s
// as a fraction of both, then the scratch each algorithm really allocates at long sequences.
// Every figure is the best of several runs: on a shared host, noise only ever slows a run down.
import DiffAttnKernels
import Glibc

func runBenchmark(quick: Bool) {
    let threads = Parallel.threadCount
    print("diffattn bench — \(threads) thread(s), kernel path \(KernelPath.selected.name), cpu \(CPUFeatures.current.summary)")
    print("")

    // FMA peak: every thread runs the probe of each ISA build (again at the end: on a shared host
    // the first measurement can be depressed, and the fractions are only as good as the peak).
    var fmaPeak = 0.0
    print("\(pad("peak", 26, right: true))\(pad("GFLOP/s", 10))")
    for path in KernelPath.allCases.reversed() where path.isSupported {
        let gflops = measureFMAPeak(path: path, quick: quick)
        if path == KernelPath.selected { fmaPeak = gflops }
        print("\(pad("FMA loop (\(path.name))", 26, right: true))\(pad(fixed(gflops, 1), 10))")
    }

    // OpenBLAS sgemm peak on a square problem, BLAS threaded over the same thread count.
    let n = quick ? 1024 : 2048
    let a = randomBuffer(n * n, seed: 1), b = randomBuffer(n * n, seed: 2), c = randomBuffer(n * n, seed: 3)
    let savedBlas = blasThreadCount
    blasThreadCount = threads
    let gemmSeconds = bestTime(repeats: quick ? 2 : 5) {
        sgemm(transposeA: false, transposeB: false, m: n, n: n, k: n, alpha: 1, a: a.baseAddress!, lda: n,
              b: b.baseAddress!, ldb: n, beta: 0, c: c.baseAddress!, ldc: n)
    }
    blasThreadCount = savedBlas
    let gemmPeak = 2 * Double(n) * Double(n) * Double(n) / gemmSeconds / 1e9
    print("\(pad("OpenBLAS sgemm \(n)³", 26, right: true))\(pad(fixed(gemmPeak, 1), 10))")
    [a, b, c].forEach { $0.deallocate() }
    print("")

    // SDPA throughput: 4·B·H·Nq·Nk·D flops (Q·Kᵀ and P·V).
    // (B, H, N, D, keys): the issue's shapes; SDXL cross attends 77 text tokens, Flux 4096 + 512.
    let shapes = [(2, 8, 1024, 64, 1024), (1, 24, 4096, 128, 4096), (2, 10, 4096, 64, 4096), (2, 8, 4096, 40, 4096),
                  (2, 10, 1024, 64, 77), (2, 10, 1024, 80, 1024), (1, 24, 4608, 128, 4608)]
    print(pad("SDPA (B,H,N,D)[×keys]", 22, right: true) + pad("kernel", 7) + pad("ms", 10) + pad("GFLOP/s", 10)
          + pad("/sgemm", 9) + pad("/FMA", 8))
    for (batch, heads, length, depth, keys) in shapes {
        for algorithm in [SDPAAlgorithm.math, .flash] {
            let seconds = timeAttention(batch: batch, heads: heads, length: length, depth: depth,
                                        algorithm: algorithm, repeats: quick ? 1 : 5, warmUp: !quick, keys: keys)
            let gflops = 4 * Double(batch * heads) * Double(length) * Double(keys) * Double(depth) / seconds / 1e9
            print(pad("(\(batch),\(heads),\(length),\(depth))" + (keys == length ? "" : "×\(keys)"), 22, right: true)
                  + pad(algorithm == .math ? "math" : "flash", 7) + pad(fixed(seconds * 1e3, 1), 10)
                  + pad(fixed(gflops, 1), 10) + pad(fixed(100 * gflops / gemmPeak, 0) + "%", 9)
                  + pad(fixed(100 * gflops / fmaPeak, 0) + "%", 8))
        }
    }
    print("")

    // The same kernels with masks and causality, (2,10,4096,64) flash; causal counts its dense flops.
    print(pad("flash (2,10,4096,64)", 29, right: true) + pad("ms", 10) + pad("GFLOP/s", 10) + pad("/FMA", 8))
    for variant in [AttentionVariant.paddingMask, .fullMask, .causal] {   // causal: dense flops, half computed
        let seconds = timeAttention(batch: 2, heads: 10, length: 4096, depth: 64, algorithm: .flash,
                                    repeats: quick ? 1 : 3, warmUp: !quick, variant: variant)
        let gflops = 4 * 20 * 4096.0 * 4096.0 * 64 / seconds / 1e9
        print(pad(variant.rawValue, 29, right: true) + pad(fixed(seconds * 1e3, 1), 10) + pad(fixed(gflops, 1), 10)
              + pad(fixed(100 * gflops / fmaPeak, 0) + "%", 8))
    }
    print("")

    runPrecisionBenchmark(quick: quick, fmaPeak: fmaPeak)
    runForwardBenchmark(quick: quick, fmaPeak: fmaPeak)
    runKernelPathsBenchmark(quick: quick, fmaPeak: fmaPeak)
    runScalingBenchmark(quick: quick)

    // Peak extra memory: the kernels' own scratch counter (every byte they allocate), B = H = 1, D = 64.
    print(pad("extra memory (B=H=1, D=64)", 30, right: true) + pad("math", 14) + pad("flash", 14)
          + pad("N² scores", 14))
    for length in quick ? [16384] : [16384, 32768] {
        var peaks: [Int] = []
        for algorithm in [SDPAAlgorithm.math, .flash] {
            KernelScratch.resetPeak()
            _ = timeAttention(batch: 1, heads: 1, length: length, depth: 64, algorithm: algorithm,
                              repeats: 1, warmUp: false)
            peaks.append(KernelScratch.peak)
        }
        print(pad("N = \(length)", 30, right: true) + pad(megabytes(peaks[0]), 14) + pad(megabytes(peaks[1]), 14)
              + pad(megabytes(length * length * 4), 14))
    }
    let again = measureFMAPeak(path: KernelPath.selected, quick: quick)
    print("\nFMA peak re-measured at the end: \(fixed(again, 1)) GFLOP/s (fractions above use \(fixed(fmaPeak, 1)));"
          + " a large difference means the host was busy — rerun when it is quiet")
}

/// Best FMA-loop throughput of `path` over every thread, GFLOP/s.
func measureFMAPeak(path: KernelPath, quick: Bool) -> Double {
    let threads = Parallel.threadCount
    let sink = UnsafeMutableBufferPointer<Float>.allocate(capacity: Parallel.maxThreads)
    defer { sink.deallocate() }
    let iterations = quick ? 2_000_000 : 8_000_000
    let seconds = bestTime(repeats: quick ? 5 : 10) {
        Parallel.forEach(threads) { t in sink[t] = fmaThroughputProbe(path: path, iterations: iterations, seed: Float(t)) }
    }
    return Double(threads * iterations * fmaProbeFlopsPerIteration) / seconds / 1e9
}

func randomBuffer(_ count: Int, seed: UInt64) -> UnsafeMutableBufferPointer<Float> {
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    var state = seed
    for i in 0..<count {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        buffer[i] = Float(Int64(bitPattern: state >> 11) % 2_000_001) / 1_000_000 - 1
    }
    return buffer
}

enum AttentionVariant: String {
    case plain = "no mask"
    case paddingMask = "additive mask (B,1,1,N)"
    case fullMask = "additive mask (B,1,N,N)"
    case causal = "causal"
}

/// Best time of self-attention on contiguous (B, H, N, D) tensors.
func timeAttention(batch: Int, heads: Int, length: Int, depth: Int, algorithm: SDPAAlgorithm,
                   repeats: Int, warmUp: Bool, variant: AttentionVariant = .plain, keys: Int? = nil,
                   format: SDPAElementFormat = .float32, precision: SDPAPrecision = .standard) -> Double {
    let count = batch * heads * length * depth, keyLength = keys ?? length
    let q = randomBuffer(count, seed: 11)
    let k = randomBuffer(batch * heads * keyLength * depth, seed: 12), v = randomBuffer(batch * heads * keyLength * depth, seed: 13)
    let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    let maskCount = variant == .fullMask ? batch * length * length : batch * length
    let mask = randomBuffer(maskCount, seed: 14)
    defer { [q, k, v, out, mask].forEach { $0.deallocate() } }
    let strides = Strides4.contiguous(heads: heads, tokens: length, channels: depth)
    let keyStrides = Strides4.contiguous(heads: heads, tokens: keyLength, channels: depth)
    let maskStrides = variant == .fullMask
        ? Strides4(batch: length * length, head: 0, token: length, channel: 1)
        : Strides4(batch: length, head: 0, token: 0, channel: 1)
    var problem = SDPAProblem(
        batch: batch, queryHeads: heads, keyValueHeads: heads, queryLength: length, keyLength: keyLength,
        headDim: depth, valueDim: depth,
        query: SDPAOperand(data: q.baseAddress!, strides: strides),
        key: SDPAOperand(data: k.baseAddress!, strides: keyStrides),
        value: SDPAOperand(data: v.baseAddress!, strides: keyStrides),
        output: out.baseAddress!, outputStrides: strides,
        mask: variant == .paddingMask || variant == .fullMask ? .additive(UnsafePointer(mask.baseAddress!), maskStrides) : .none,
        scale: 1 / Float(depth).squareRoot(), isCausal: variant == .causal)
    problem.precision = precision
    // bf16: the same numbers rounded, in the first half of each buffer (bf16 in, bf16 out).
    if format == .bfloat16 {
        for buffer in [q, k, v] {
            let bits = UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: UInt16.self)
            for i in 0..<buffer.count { bits[i] = bfloat16Bits(buffer[i]) }
        }
        func half(_ b: UnsafeMutableBufferPointer<Float>) -> UnsafePointer<UInt16> {
            UnsafePointer(UnsafeMutableRawPointer(b.baseAddress!).assumingMemoryBound(to: UInt16.self))
        }
        problem.query = SDPAOperand(bfloat16: half(q), strides: strides)
        problem.key = SDPAOperand(bfloat16: half(k), strides: keyStrides)
        problem.value = SDPAOperand(bfloat16: half(v), strides: keyStrides)
        problem.outputFormat = .bfloat16
    }
    return bestTime(repeats: repeats, warmUp: warmUp) { scaledDotProductAttention(problem, algorithm: algorithm) }
}
