// The `diffattn` command-line tool: `info`, `bench`, `selftest`.
import CDiffAttnHeader
import DiffAttnKernels
import Glibc

let usage = """
    usage: diffattn <command> [options]
      info                      CPU features, kernel path, thread count
      bench [--quick]           FMA and sgemm peaks, SDPA GFLOP/s, peak extra memory
      bench-dit [--quick]       rotary step per DiT family, Sana linear attention
      bench-processors [--quick] a whole Attention forward per processor, with peak scratch memory
      selftest                  small problems against a naive reference (exit 1 on mismatch)
    options: --threads N (default DIFFATTN_NUM_THREADS or online CPUs),
             --kernel-path avx512|avx2+fma|portable (default: the best this CPU supports)
    """

var arguments = Array(CommandLine.arguments.dropFirst())
let command = arguments.isEmpty ? "info" : arguments.removeFirst()
var quick = false
while !arguments.isEmpty {
    let option = arguments.removeFirst()
    switch option {
    case "--quick": quick = true
    case "--threads":
        guard let text = arguments.first, let n = Int(text), n > 0 else {
            fputs("diffattn: --threads needs a positive integer\n", stderr); exit(2)
        }
        arguments.removeFirst()
        Parallel.threadCount = n
    case "--kernel-path":
        guard let name = arguments.first, let path = KernelPath.allCases.first(where: { $0.name == name }),
              path.isSupported else {
            fputs("diffattn: --kernel-path needs one of: "
                  + KernelPath.allCases.filter(\.isSupported).map(\.name).joined(separator: ", ") + "\n", stderr)
            exit(2)
        }
        arguments.removeFirst()
        KernelPath.selected = path
    default:
        fputs("diffattn: unknown option \(option)\n\(usage)\n", stderr); exit(2)
    }
}

switch command {
case "info":
    printInfo()
case "bench":
    runBenchmark(quick: quick)
case "bench-dit":
    runDiTBenchmark(quick: quick)
case "bench-processors":
    runProcessorBenchmark(quick: quick)
case "breakdown":
    for (rows, inF, outF) in [(130, 77, 13), (2048, 640, 640), (64, 3072, 200), (7, 5, 1)] {
        let x = randomBuffer(rows * inF, seed: 1), w = randomBuffer(outF * inF, seed: 2), bias = randomBuffer(outF, seed: 3)
        let y1 = randomBuffer(rows * outF, seed: 4), y2 = randomBuffer(rows * outF, seed: 5)
        let saved = KernelPath.selected
        KernelPath.selected = .avx2
        linear(x.baseAddress!, rows: rows, inFeatures: inF, weight: w.baseAddress!, bias: bias.baseAddress!, outFeatures: outF, into: y1.baseAddress!)
        KernelPath.selected = saved
        let t = bestTime(repeats: 3) { linear(x.baseAddress!, rows: rows, inFeatures: inF, weight: w.baseAddress!, bias: bias.baseAddress!, outFeatures: outF, into: y2.baseAddress!) }
        var worst: Float = 0
        for i in 0..<(rows * outF) { worst = max(worst, abs(y1[i] - y2[i]) / (abs(y1[i]) + 1e-3)) }
        print("linear", rows, inF, outF, "maxrel", worst, "GF/s", 2.0 * Double(rows * inF * outF) / t / 1e9)
    }
    for (c, h, d, n, kk, cd) in [(320, 8, 40, 4096, nil, nil), (640, 10, 64, 1024, nil, nil), (320, 8, 40, 4096, 77, 768)] as [(Int, Int, Int, Int, Int?, Int?)] {
        if let r = forwardBreakdown(channels: c, heads: h, dimHead: d, tokens: n, keys: kk, contextDim: cd, repeats: 5) {
            print(c, h, d, n, "total", r.total * 1e3, "proj", r.projections * 1e3, "sdpa", r.attention * 1e3)
        }
    }
case "selftest":
    exit(runSelfTest() ? 0 : 1)
case "help", "--help", "-h":
    print(usage)
default:
    fputs("diffattn: unknown command \(command)\n\(usage)\n", stderr); exit(2)
}

func printInfo() {
    let f = CPUFeatures.current
    print("libdiffattn      \(DA_VERSION_MAJOR).\(DA_VERSION_MINOR).\(DA_VERSION_PATCH) (ABI \(DA_ABI_VERSION))")
    print("cpu features     \(f.summary)")
    print("kernel paths     \(KernelPath.allCases.filter(\.isSupported).map(\.name).joined(separator: ", "))")
    print("selected path    \(KernelPath.selected.name)")
    print("threads          \(Parallel.threadCount)  (DIFFATTN_NUM_THREADS or online CPUs)")
    print("blas threads     \(blasThreadCount)")
}
