// What the CPU can do (cpuid, with the OS's register-state support from XCR0) and which kernel
// build the dispatcher uses. Chosen once at start-up; settable so tests can exercise every path
// the machine supports.
import CDiffAttnCPUID

public struct CPUFeatures: Sendable, Equatable {
    public var avx2 = false, fma = false, avx512f = false, avx512bf16 = false
    /// The rest of what `-target-cpu skylake-avx512` lets the compiler use (mask moves such as
    /// vpmovm2d are AVX512DQ): the AVX-512 path needs all of them.
    public var avx512dq = false, avx512bw = false, avx512vl = false, avx512cd = false
    /// The rest of what `-target-cpu haswell` lets the compiler use besides AVX2 and FMA.
    public var bmi1 = false, bmi2 = false, f16c = false, movbe = false, lzcnt = false

    /// The features of the running CPU, detected on first use.
    public static let current = CPUFeatures.detect()

    static func detect() -> CPUFeatures {
        var features = CPUFeatures()
        var leaf1 = [UInt32](repeating: 0, count: 4), leaf7 = leaf1, leaf7s1 = leaf1, extended = leaf1
        guard diffattn_cpuid(1, 0, &leaf1) != 0 else { return features }
        let xcr0 = diffattn_xcr0()
        let osAVX = xcr0 & 0x6 == 0x6                     // SSE and AVX state saved
        let osAVX512 = osAVX && xcr0 & 0xE0 == 0xE0       // opmask, ZMM_Hi256, Hi16_ZMM saved
        let hasAVX = leaf1[2] & (1 << 28) != 0
        if diffattn_cpuid(7, 0, &leaf7) != 0 {
            _ = diffattn_cpuid(7, 1, &leaf7s1)
        }
        features.fma = osAVX && hasAVX && leaf1[2] & (1 << 12) != 0
        features.avx2 = osAVX && hasAVX && leaf7[1] & (1 << 5) != 0
        features.avx512f = osAVX512 && leaf7[1] & (1 << 16) != 0
        features.avx512bf16 = features.avx512f && leaf7s1[0] & (1 << 5) != 0
        features.avx512dq = osAVX512 && leaf7[1] & (1 << 17) != 0
        features.avx512cd = osAVX512 && leaf7[1] & (1 << 28) != 0
        features.avx512bw = osAVX512 && leaf7[1] & (1 << 30) != 0
        features.avx512vl = osAVX512 && leaf7[1] & (1 << 31) != 0
        features.bmi1 = leaf7[1] & (1 << 3) != 0
        features.bmi2 = leaf7[1] & (1 << 8) != 0
        features.f16c = osAVX && leaf1[2] & (1 << 29) != 0
        features.movbe = leaf1[2] & (1 << 22) != 0
        if diffattn_cpuid(0x8000_0001, 0, &extended) != 0 { features.lzcnt = extended[2] & (1 << 5) != 0 }
        return features
    }

    var haswellClass: Bool { avx2 && fma && bmi1 && bmi2 && f16c && movbe && lzcnt }

    /// Comma-separated names of the features present, for `info` and capability queries.
    public var summary: String {
        var names: [String] = []
        if avx2 { names.append("avx2") }
        if fma { names.append("fma") }
        if avx512f { names.append("avx512f") }
        if avx512bf16 { names.append("avx512bf16") }
        return names.isEmpty ? "baseline x86-64" : names.joined(separator: ",")
    }
}

/// A compiled build of the kernel bodies.
public enum KernelPath: Int, Sendable, CaseIterable {
    /// Baseline x86-64 (SSE2), no FMA: runs anywhere.
    case portable = 0
    /// AVX2 + FMA (`-target-cpu haswell`).
    case avx2 = 1
    /// AVX-512F (`-target-cpu skylake-avx512`).
    case avx512 = 2

    public var name: String {
        switch self {
        case .portable: return "portable"
        case .avx2: return "avx2+fma"
        case .avx512: return "avx512"
        }
    }

    /// Whether this CPU can run the path.
    public var isSupported: Bool {
        let f = CPUFeatures.current
        switch self {
        case .portable: return true
        case .avx2: return f.haswellClass
        case .avx512: return f.haswellClass && f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl && f.avx512cd
        }
    }

    /// The best path this CPU supports.
    public static var best: KernelPath {
        KernelPath.allCases.reversed().first { $0.isSupported } ?? .portable
    }

    /// The path every kernel call uses. Starts as `best`; setting an unsupported path is ignored.
    public static var selected: KernelPath {
        get { KernelPath(rawValue: selectedRaw.load(ordering: .relaxed)) ?? .portable }
        set { if newValue.isSupported { selectedRaw.store(newValue.rawValue, ordering: .relaxed) } }
    }
}
