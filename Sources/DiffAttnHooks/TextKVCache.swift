import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels
import Glibc

/// diffusers' `TextKVCacheConfig` (hooks/text_kv_cache.py; no fields). diffusers applies it to one
/// model family; here it goes where the text keys and values are provably the same every step —
/// the cross-attention of UNet and PixArt, whose encoder states reach every block unchanged
/// (docs/caches.md) — and is refused where the text stream changes per step (Flux, SD3).
public struct TextKVCacheConfig: Sendable { public init() {} }

/// The memo behind the cache: per cache context and layer, the last input of the layer and its
/// output. A hit needs the input to be bitwise the same, so the cache is lossless by construction:
/// a new prompt (or anything else that changes the text states) is a miss and recomputes.
final class ProjectionMemo: @unchecked Sendable {
    private let lock = Locked()
    private var entries: [String: (input: Tensor, output: Tensor)] = [:]
    private(set) var hits = 0, misses = 0
    let context: HookContext

    init(context: HookContext) { self.context = context }

    func lookup(_ layer: String, _ x: Tensor, _ compute: () throws -> Tensor) throws -> Tensor {
        let key = (context.cacheContext ?? "inference") + "\u{0}" + layer
        if let e = lock.run({ entries[key] }), ProjectionMemo.same(e.input, x) {
            lock.run { hits += 1 }
            return e.output
        }
        let y = try compute()
        lock.run { entries[key] = (x, y); misses += 1 }
        return y
    }

    func reset() { lock.run { entries = [:]; hits = 0; misses = 0 } }

    var counts: (hits: Int, misses: Int) { lock.run { (hits, misses) } }

    static func same(_ a: Tensor, _ b: Tensor) -> Bool {
        guard a.shape == b.shape else { return false }
        return a.withUnsafeElements { pa in b.withUnsafeElements { pb in   // in place, lent or owned
            pa.count == pb.count && (pa.count == 0 || memcmp(pa.baseAddress!, pb.baseAddress!, pa.count * MemoryLayout<Float>.size) == 0)
        } }
    }
}

/// `text_kv_cache_transformer` (root, stateful: resets the memo) and `text_kv_cache_block` (one per
/// cross-attention module: its `to_k` / `to_v` outputs go through the memo).
public final class TextKVCacheHook: ModelHook, @unchecked Sendable {
    let memo: ProjectionMemo
    let isRoot: Bool

    init(_ memo: ProjectionMemo, isRoot: Bool) { self.memo = memo; self.isRoot = isRoot }

    public override var isStateful: Bool { isRoot }
    public override var hookDescription: String { isRoot ? "TextKVCacheTransformerHook" : "TextKVCacheBlockHook" }
    public override func resetState(_ module: HookRegistry) throws { memo.reset() }

    public override func initializeHook(_ module: HookRegistry) throws {
        guard !isRoot, let a = module.attention else { return }
        let memo = self.memo
        a.setProjectionMemo { layer, x, compute in
            guard layer == "to_k" || layer == "to_v" else { return try compute() }
            return try memo.lookup(module.path + "." + layer, x, compute)
        }
    }

    public override func deinitializeHook(_ module: HookRegistry) throws {
        if !isRoot { module.attention?.setProjectionMemo(nil) }
    }
}

extension Model {
    public static let textKVCacheRootHookName = "text_kv_cache_transformer"
    public static let textKVCacheBlockHookName = "text_kv_cache_block"

    /// Model classes whose cross-attention text states are constant across steps (the encoder
    /// states are projected once and handed to every block unchanged).
    static let textKVCacheClasses: Set<ModelClass> = [.unet2DCondition, .unet3DCondition, .pixArtTransformer2D]

    /// `apply_text_kv_cache(module, config)`: returns the hooked cross-attention paths.
    @discardableResult
    public func applyTextKVCache(_ config: TextKVCacheConfig) throws -> [String] {
        guard Model.textKVCacheClasses.contains(modelClass) else {
            let why = modelClass == .fluxTransformer2D || modelClass == .sd3Transformer2D
                ? "its text stream is modulated by the timestep and updated in every block, so text keys and values change per step"
                : "its text keys and values are not known to be constant across steps"
            throw DiffAttnError.value("TextKVCache cannot be applied to \(modelClass.name): \(why). Supported: UNet2DConditionModel, UNet3DConditionModel, PixArtTransformer2DModel.")
        }
        let memo = ProjectionMemo(context: hookContext)
        let targets = attentionModules.filter { $0.1.derived.isCrossAttention }.map(\.0)
        guard !targets.isEmpty else { throw DiffAttnError.value("TextKVCache found no cross-attention modules on the model.") }
        try replaceHook(TextKVCacheHook(memo, isRoot: true), name: Model.textKVCacheRootHookName, at: "")
        for p in targets { try replaceHook(TextKVCacheHook(memo, isRoot: false), name: Model.textKVCacheBlockHookName, at: p) }
        return targets
    }

    /// (hits, misses) of the text K/V memo since the last reset (nil when not applied).
    public var textKVCacheCounts: (hits: Int, misses: Int)? {
        guard let r = try? hookRegistry(at: ""), let h = r.hook(named: Model.textKVCacheRootHookName) as? TextKVCacheHook else { return nil }
        return h.memo.counts
    }
}
