// `diffattn bench`: the reduced-precision paths — each format's peak on this CPU, then bf16 and int8
// SDPA against float32 on the same shapes, as a fraction of the peak that path can reach.
import DiffAttnKernels

/// Best vpmaddwd-loop throughput over every thread, in giga integer operations per second.
func measureInt8Peak(quick: Bool) -> Double {
    guard int8AttentionSupported else { return 0 }
    let threads = Parallel.threadCount
    let sink = UnsafeMutableBufferPointer<Int32>.allocate(capacity: Parallel.maxThreads)
    defer { sink.deallocate() }
    let iterations = quick ? 2_000_000 : 8_000_000
    let seconds = bestTime(repeats: quick ? 5 : 10) {
        Parallel.forEach(threads) { t in sink[t] = int8ThroughputProbe(iterations: iterations, seed: Int32(t)) }
    }
    return Double(threads * iterations * 256) / seconds / 1e9
}

func runPrecisionBenchmark(quick: Bool, fmaPeak: Double) {
    let f = CPUFeatures.current
    let int8Peak = measureInt8Peak(quick: quick)
    // bf16 runs on the float32 FMA units here (widened in the tile): its peak is the fp32 one.
    // AVX512_BF16's vdpbf16ps would double it and VNNI's vpdpbusd quadruple it; neither path exists
    // yet, so those peaks are not the ones our kernels can reach.
    print(pad("peak of each path", 34, right: true) + pad("G op/s", 10) + "  how")
    print(pad("fp32 FMA (\(KernelPath.selected.name))", 34, right: true) + pad(fixed(fmaPeak, 1), 10) + "  measured above")
    print(pad("bf16 (widened to fp32 FMA)", 34, right: true) + pad(fixed(fmaPeak, 1), 10)
          + "  = fp32 FMA" + (f.avx512bf16 ? " (avx512bf16 present: vdpbf16ps would give 2×, not used yet)" : " (no avx512bf16)"))
    print(pad("int8 (vpmaddwd, 16 MAC/instr)", 34, right: true) + pad(int8Peak > 0 ? fixed(int8Peak, 1) : "n/a", 10)
          + "  measured (VNNI vpdpbusd not used: " + (f.avx512f ? "untested here)" : "absent)"))
    print("")
    let shapes = quick ? [(2, 8, 1024, 64, 1024)]
        : [(2, 8, 1024, 64, 1024), (2, 10, 4096, 64, 4096), (1, 24, 4096, 128, 4096), (2, 8, 4096, 40, 4096),
           (2, 10, 1024, 64, 77)]
    print(pad("flash SDPA (B,H,N,D)[×keys]", 30, right: true) + pad("fp32 ms", 10) + pad("bf16 ms", 10)
          + pad("int8 ms", 10) + pad("bf16/peak", 11) + pad("int8/peak", 11) + pad("fp32÷bf16", 11) + pad("fp32÷int8", 11))
    for (batch, heads, length, depth, keys) in shapes {
        let flops = 4 * Double(batch * heads) * Double(length) * Double(keys) * Double(depth)
        let time = { (format: SDPAElementFormat, precision: SDPAPrecision) in
            timeAttention(batch: batch, heads: heads, length: length, depth: depth, algorithm: .flash,
                          repeats: quick ? 1 : 5, warmUp: !quick, keys: keys, format: format, precision: precision)
        }
        let fp32 = time(.float32, .standard), bf16 = time(.bfloat16, .standard)
        let int8 = int8AttentionSupported ? time(.float32, .int8) : .nan
        print(pad("(\(batch),\(heads),\(length),\(depth))" + (keys == length ? "" : "×\(keys)"), 30, right: true)
              + pad(fixed(fp32 * 1e3, 1), 10) + pad(fixed(bf16 * 1e3, 1), 10) + pad(fixed(int8 * 1e3, 1), 10)
              + pad(fixed(100 * flops / bf16 / 1e9 / fmaPeak, 0) + "%", 11)
              + pad(fixed(100 * flops / int8 / 1e9 / int8Peak, 0) + "%", 11)
              + pad(fixed(fp32 / bf16, 2), 11) + pad(fixed(fp32 / int8, 2), 11))
    }
    print("")
}
