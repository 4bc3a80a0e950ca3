// The `diffattn` command-line tool: `info`, `bench`, `selftest`.
import CDiffAttnHeader
import DiffAttnKernels
import Glibc

let usage = """
    usage: diffattn <command> [options]
      info                      CPU features, kernel path, thread count
      bench [--quick]           FMA and sgemm peaks; SDPA, Attention forwards, sliced/added-KV/Sana/rotary
                                paths and the layerwise-cast GEMM as GFLOP/s and fraction of the FMA peak;
                                where a forward's time goes; thread scaling; peak extra memory
      bench-dit [--quick]       rotary step per DiT family, Sana linear attention
      bench-processors [--quick] a whole Attention forward per processor, with peak scratch memory
      bench-precision [--quick] fp32 / bf16 / int8 peaks, then flash SDPA in each format
      selftest                  small problems against a naive reference (exit 1 on mismatch)
    DIFFATTN_BENCH_CPUTIME=1 times with the process CPU clock (for --threads 1 on a loaded host)
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
case "bench-precision":
    runPrecisionBenchmark(quick: quick, fmaPeak: measureFMAPeak(path: KernelPath.selected, quick: quick))
case "bench-processors":
    runProcessorBenchmark(quick: quick)
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
