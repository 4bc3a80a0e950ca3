import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// `GroupOffloadingType` (hooks/group_offloading.py:apply_group_offloading).
public enum GroupOffloadingType: Int32, Sendable {
    case blockLevel = 0
    case leafLevel = 1

    public init(name: String) throws {
        switch name {
        case "block_level": self = .blockLevel
        case "leaf_level": self = .leafLevel
        default: throw DiffAttnError.value("'\(name)' is not a valid GroupOffloadingType")
        }
    }
}

/// The options of diffusers' `apply_group_offloading` / `enable_group_offload`, with the CPU
/// meanings of this library:
///
/// - `onloadDevice` / `offloadDevice`: only `"cpu"` (the compute memory); the offload target is
///   `offloadToDiskPath` (files) or, without it, a packed copy in memory.
/// - `useStream`: a background prefetch thread instead of a CUDA side stream. As in diffusers it
///   forces `numBlocksPerGroup` to 1, and the first step (synchronous) learns the order.
/// - `nonBlocking`: accepted; with `useStream` onloads after the first step are asynchronous.
/// - `recordStream`: accepted (needs `useStream`, as in diffusers); buffers being read by a
///   computation are never recycled here, so it changes nothing.
/// - `lowCPUMemUsage`: accepted; no pinned copies exist on a CPU, so it changes nothing.
/// - `blockModules`: children treated as sub-models (their own blocks and unmatched group).
/// - `excludeKwargs`: accepted; inputs are never moved here.
public struct GroupOffloadConfig: Sendable {
    public var onloadDevice = "cpu"
    public var offloadDevice = "cpu"
    public var offloadType = GroupOffloadingType.blockLevel
    public var numBlocksPerGroup: Int?
    public var nonBlocking = false
    public var useStream = false
    public var recordStream = false
    public var lowCPUMemUsage = false
    public var offloadToDiskPath: String?
    public var blockModules: [String]?
    public var excludeKwargs: [String]?

    public init() {}

    /// diffusers' validation, in its order (hooks/group_offloading.py:apply_group_offloading), with the CPU reinterpretation of streams.
    public func validated() throws -> GroupOffloadConfig {
        for (d, what) in [(onloadDevice, "onload_device"), (offloadDevice, "offload_device")] where d != "cpu" {
            throw DiffAttnError(.unsupported, "\(what) '\(d)' is not available: libdiffattn computes on the CPU only (use \"cpu\")")
        }
        if recordStream && !useStream {
            throw DiffAttnError.value("`record_stream` cannot be True when `use_stream=False`.")
        }
        var c = self
        if offloadType == .blockLevel {
            guard let n = numBlocksPerGroup else {
                throw DiffAttnError.value("`num_blocks_per_group` must be provided when using `offload_type='block_level'.")
            }
            guard n >= 1 else { throw DiffAttnError.value("`num_blocks_per_group` must be at least 1, got \(n)") }
            if useStream && n != 1 { c.numBlocksPerGroup = 1 }  // diffusers logs and forces 1 (hooks/group_offloading.py:_apply_group_offloading_block_level)
        }
        if let p = offloadToDiskPath, p.isEmpty || p.utf8.contains(0) {
            throw DiffAttnError.argument("offload_to_disk_path must be a non-empty path")
        }
        return c
    }
}
