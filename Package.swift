// swift-tools-version:5.9
// libdiffattn — diffusers' attention subsystem for the CPU, behind a C API.
// Layers (dependencies point down, one target each; folders = targets):
//   DiffAttnC (C boundary) → DiffAttnHooks (registry, offloading, PAB, caches) → DiffAttnModels
//   (trees, config parser, safetensors) → DiffAttnProcessors (steps, pipelines, forward) →
//   DiffAttnModule (Attention: config, parameters, switches, state dict, processor values) →
//   DiffAttnKernels → COpenBLAS; DiffAttnParallel (context parallelism) → DiffAttnKernels. DiffAttn is
//   an umbrella re-exporting them (C boundary, tool, tests).
import PackageDescription

let root = Context.packageDirectory

// Only the dynamic product's boundary target carries these: a version script on a test binary
// would hide its symbols. `-static-stdlib` keeps the Swift runtime out of the host's `ldd`.
let sharedLibraryFlags: [String] = [
    "-static-stdlib", "-use-ld=lld",
    "-Xlinker", "--version-script=\(root)/Sources/DiffAttnC/diffattn.map",
    "-Xlinker", "-soname=libdiffattn.so.0",
    "-Xlinker", "-z", "-Xlinker", "now",
    "-Xlinker", "-z", "-Xlinker", "relro",
]

let package = Package(
    name: "diffattn",
    products: [
        .library(name: "diffattn", type: .dynamic, targets: ["DiffAttnC"]),
        .executable(name: "diffattn-tool", targets: ["diffattn"]),  // binary diffattn-tool; installed as `diffattn`
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CDiffAttnHeader", path: "Sources/CDiffAttnHeader"),
        // Kernel ISA split (DESIGN.md "Kernels"): bodies written once as inlined SIMD16 code, compiled
        // per ISA by thin targets with their own -target-cpu; DiffAttnKernels picks one from cpuid.
        .target(name: "CDiffAttnCPUID", path: "Sources/CDiffAttnCPUID"),
        .target(name: "DiffAttnKernelBodies", dependencies: ["CDiffAttnCPUID"], swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
        .target(name: "DiffAttnKernelsAVX512", dependencies: ["DiffAttnKernelBodies"],
                swiftSettings: [.unsafeFlags(["-Ounchecked", "-target-cpu", "skylake-avx512"])]),
        .target(name: "DiffAttnKernelsAVX2", dependencies: ["DiffAttnKernelBodies"],
                swiftSettings: [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"])]),
        .target(name: "DiffAttnKernels",
                dependencies: ["COpenBLAS", "CDiffAttnCPUID", "DiffAttnKernelBodies",
                               "DiffAttnKernelsAVX512", "DiffAttnKernelsAVX2"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
        .target(name: "DiffAttnModule", dependencies: ["DiffAttnKernels"]),
        .target(name: "DiffAttnProcessors", dependencies: ["DiffAttnModule"]),
        .target(name: "DiffAttnModels", dependencies: ["DiffAttnProcessors"]),
        .target(name: "DiffAttnHooks", dependencies: ["DiffAttnModels"]),
        // Context parallelism (docs/parallel.md): communicators and ring/Ulysses attention over the
        // kernels alone; MPI only through the optional plugin whose interface CDiffAttnMPIPlugin
        // declares and loads.
        .target(name: "CDiffAttnMPIPlugin", path: "Sources/CDiffAttnMPIPlugin"),
        .target(name: "DiffAttnParallel", dependencies: ["DiffAttnKernels", "CDiffAttnMPIPlugin"]),
        .target(name: "DiffAttn", dependencies: ["DiffAttnHooks", "DiffAttnParallel"]),
        .target(name: "DiffAttnC", dependencies: ["DiffAttn", "CDiffAttnHeader"], exclude: ["diffattn.map"],
                linkerSettings: [.unsafeFlags(sharedLibraryFlags)]),
        .executableTarget(name: "diffattn", dependencies: ["DiffAttn", "CDiffAttnHeader"]),
        .testTarget(name: "DiffAttnTests", dependencies: ["DiffAttn"]),
    ]
)
