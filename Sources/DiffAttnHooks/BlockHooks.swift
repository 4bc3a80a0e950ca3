import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// The streams of one host-run module call (a transformer block, a feed-forward): what the host
/// passes in before running it and what it got out. When a cache skips the module, these hold
/// the output the host must use instead.
public struct BlockIO: Sendable {
    public var hiddenStates: Tensor
    public var encoderHiddenStates: Tensor?
    /// TeaCache's indicator: the first block's timestep-modulated input (`norm1(x, temb)`).
    public var modulatedInput: Tensor?
    /// The output-buffer form (issue 16): the host gives separate output buffers, whose shapes may
    /// differ from the inputs' (Flux `proj_out`: 3072 → 64 channels). Then `outputs` holds a skipped
    /// module's outputs after `moduleBegin` and a run module's outputs at `moduleEnd`, in stream
    /// order (hidden, encoder); hooks that only know the streams write `hiddenStates` /
    /// `encoderHiddenStates`, which the protocol maps onto `outputs`.
    public var outputForm = false
    public var outputs: [Tensor]?

    public init(hiddenStates: Tensor, encoderHiddenStates: Tensor? = nil, modulatedInput: Tensor? = nil) {
        self.hiddenStates = hiddenStates; self.encoderHiddenStates = encoderHiddenStates; self.modulatedInput = modulatedInput
    }
}

/// A hook on a host-run module that may skip it (the block protocol, docs/caches.md). diffusers'
/// block hooks replace the block's forward; here the host runs the block, so the forward is split:
/// `blockBegin` sees the inputs and answers run / skip (when skipping it writes the output into
/// `io`), `blockEnd` sees the outputs of a run (and may replace them).
public protocol BlockHook: AnyObject {
    func blockBegin(_ module: HookRegistry, _ io: inout BlockIO) throws -> Bool
    func blockEnd(_ module: HookRegistry, _ io: inout BlockIO) throws
}

/// diffusers' `StateManager` (hooks/hooks.py:StateManager): one state per cache context name.
final class CacheStates<S>: @unchecked Sendable {
    private let lock = Locked()
    private var states: [String: S] = [:]
    private let make: () -> S
    /// MagCache sets this context itself when none is set; FBC and TaylorSeer require one.
    private let defaultContext: String?
    let context: HookContext

    init(context: HookContext, defaultContext: String? = nil, _ make: @escaping () -> S) {
        self.context = context; self.defaultContext = defaultContext; self.make = make
    }

    private func name() throws -> String {
        if let n = context.cacheContext ?? defaultContext { return n }
        throw DiffAttnError.value("No cache context is set. Wrap the denoiser call in `model.cache_context(name, ...)` before calling it.")
    }

    /// Runs `body` on the current context's state (created on first use).
    func with<T>(_ body: (inout S) throws -> T) throws -> T {
        let n = try name()
        return try lock.run {
            var s = states[n] ?? make()
            defer { states[n] = s }
            return try body(&s)
        }
    }

    func reset() { lock.run { states.removeAll() } }
}

/// Identifiers of transformer-block lists (hooks/_common.py), in the fixed order this port uses
/// for "the first that matches" (diffusers' order depends on the string-hash seed).
public let transformerBlockListNames = ["transformer_blocks", "single_transformer_blocks", "blocks", "layers",
                                        "visual_transformer_blocks", "temporal_transformer_blocks"]

extension ModuleNode {
    /// A `ModuleList`: children named 0, 1, 2, …
    var isModuleList: Bool {
        !children.isEmpty && children.enumerated().allSatisfy { $0.element.name == String($0.offset) }
    }
}

extension Model {
    /// The transformer blocks FBC / MagCache / TeaCache chain (hooks/first_block_cache.py): the elements of the
    /// root's direct children that are block lists, in child order (`transformer_blocks.0`, …).
    public var transformerBlockPaths: [String] {
        root.children.filter { transformerBlockListNames.contains($0.name) && $0.isModuleList }
            .flatMap { list in list.children.map { list.name + "." + $0.name } }
    }

    /// Before a host-run module: its ordinary pre-forward hooks, then the block hooks outermost
    /// first. Returns false when a hook skipped it: `io` then holds the output to use (and the
    /// post-forward half has run); otherwise run the module and call `moduleEnd` with its outputs.
    public func moduleBegin(_ path: String, _ io: inout BlockIO) throws -> Bool {
        let r = try hookRegistry(at: path)
        try r.enter()
        io.outputs = nil
        for hook in r.blockHooks.reversed() {
            if try !hook.blockBegin(r, &io) {
                if io.outputForm && io.outputs == nil {  // a stream-only hook answered in place
                    io.outputs = [io.hiddenStates] + (io.encoderHiddenStates.map { [$0] } ?? [])
                }
                try r.exit()
                return false
            }
        }
        return true
    }

    /// After the host ran the module: block hooks innermost first (they may replace `io`), then
    /// the ordinary post-forward hooks. In the output form, `io.outputs` holds what the host
    /// computed; stream-only hooks see (and may replace) them as hidden / encoder states.
    public func moduleEnd(_ path: String, _ io: inout BlockIO) throws {
        let r = try hookRegistry(at: path)
        if io.outputForm {
            guard let outs = io.outputs, !outs.isEmpty else {
                throw DiffAttnError.argument("module_end in the output-buffer form needs at least one output")
            }
            io.hiddenStates = outs[0]
            io.encoderHiddenStates = outs.count > 1 ? outs[1] : nil
        }
        for hook in r.blockHooks { try hook.blockEnd(r, &io) }
        if io.outputForm, var outs = io.outputs {
            outs[0] = io.hiddenStates
            if outs.count > 1, let e = io.encoderHiddenStates { outs[1] = e }
            io.outputs = outs
        }
        try r.exit()
    }

    /// `cache_context(name)`: selects the per-context state of the caches (nil clears, fields too).
    public func setCacheContext(_ name: String?) {
        hookContext.cacheContext = name
        if name == nil { hookContext.cacheContextInfo = CacheContextInfo() }
    }

    /// `cache_context(name, step_index=..., ...)`: the name and diffusers' context fields; nil clears.
    public func enterCacheContext(_ name: String?, _ info: CacheContextInfo) {
        hookContext.cacheContext = name
        hookContext.cacheContextInfo = name == nil ? CacheContextInfo() : info
    }

    /// Installs a "head decides, tail records" cache over the transformer blocks (MagCache,
    /// TeaCache): `make(isHead, isTail)` on every block, the head under `headName`. A single block
    /// gets the tail hook first and the head hook outermost, as diffusers' MagCache.
    func installHeadTailHooks(_ blocks: [String], headName: String, blockName: String,
                              _ make: (_ head: Bool, _ tail: Bool) -> ModelHook) throws {
        if blocks.count == 1 {
            try replaceHook(make(false, true), name: blockName, at: blocks[0])
            try replaceHook(make(true, false), name: headName, at: blocks[0])
            return
        }
        for (i, path) in blocks.enumerated() {
            try replaceHook(make(i == 0, i == blocks.count - 1), name: i == 0 ? headName : blockName, at: path)
        }
    }

    /// Registers `hook` on `path`, replacing a hook of the same name (re-application).
    func replaceHook(_ hook: ModelHook, name: String, at path: String) throws {
        let r = try hookRegistry(at: path)
        try r.remove(name, recurse: false)
        try r.register(hook, name: name)
    }
}

extension HookRegistry {
    /// The registered block hooks, in registration order.
    var blockHooks: [BlockHook] { hookNames.compactMap { hook(named: $0) as? BlockHook } }
}

/// Element-wise helpers of the caches (float32, shapes checked by the caller's protocol).
enum CacheMath {
    static func check(_ a: Tensor, _ b: Tensor, _ what: String) throws {
        guard a.shape == b.shape else { throw DiffAttnError.shape("\(what): shapes \(a.shape) and \(b.shape) differ") }
    }
    static func sub(_ a: Tensor, _ b: Tensor, _ what: String) throws -> Tensor {
        try check(a, b, what)
        return Tensor(shape: a.shape, storage: zip(a.storage, b.storage).map { $0 - $1 })
    }
    static func add(_ a: Tensor, _ b: Tensor, _ what: String) throws -> Tensor {
        try check(a, b, what)
        return Tensor(shape: a.shape, storage: zip(a.storage, b.storage).map { $0 + $1 })
    }
    /// `mean(|x|)`, accumulated in double.
    static func meanAbs(_ a: Tensor) -> Double {
        a.storage.isEmpty ? 0 : a.storage.reduce(0.0) { $0 + Double(abs($1)) } / Double(a.count)
    }
    /// `mean|a − b| / mean|b|` (FBC's and TeaCache's relative L1 change).
    static func relativeL1(_ a: Tensor, _ b: Tensor, _ what: String) throws -> Double {
        try check(a, b, what)
        let num = zip(a.storage, b.storage).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) }
        let den = b.storage.reduce(0.0) { $0 + Double(abs($1)) }
        return num / den
    }
}
