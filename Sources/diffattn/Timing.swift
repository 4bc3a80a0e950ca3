// Wall-clock timing and table formatting for the benchmark.
import Glibc

func now() -> Double {
    var t = timespec()
    clock_gettime(getenv("DIFFATTN_BENCH_CPUTIME") != nil ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Best of `repeats` timings of `body` (after one warm-up run when `warmUp`).
func bestTime(repeats: Int, warmUp: Bool = true, _ body: () -> Void) -> Double {
    if warmUp { body() }
    var best = Double.infinity
    for _ in 0..<max(repeats, 1) {
        let start = now()
        body()
        best = min(best, now() - start)
    }
    return best
}

func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - s.count))
    return right ? s + fill : fill + s
}

func fixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let r = (abs(x) * scale).rounded()
    let whole = Int(r / scale), frac = Int(r) - whole * Int(scale)
    let fracText = digits == 0 ? "" : "." + pad(String(frac), digits).replacingSpaces()
    return (x < 0 ? "-" : "") + String(whole) + fracText
}

extension String {
    func replacingSpaces() -> String { String(map { $0 == " " ? "0" : $0 }) }
}

func megabytes(_ bytes: Int) -> String { fixed(Double(bytes) / 1_048_576, 2) + " MiB" }
