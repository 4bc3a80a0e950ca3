import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// The caches `enable_cache` knows (diffusers' `CacheMixin`, models/cache_utils.py:CacheMixin, plus TeaCache), with
/// the hook names `disable_cache` removes.
public enum CacheKind: Int32, Sendable, CaseIterable {
    case fasterCache = 1, firstBlockCache = 2, magCache = 3, pyramidAttentionBroadcast = 4, taylorSeerCache = 5, teaCache = 6
    case seaCache = 7, textKVCache = 8

    public var hookNames: [String] {
        switch self {
        case .fasterCache: return [Model.fasterCacheDenoiserHookName, Model.fasterCacheBlockHookName]
        case .firstBlockCache: return [Model.fbcLeaderHookName, Model.fbcBlockHookName]
        case .magCache: return [Model.magCacheLeaderHookName, Model.magCacheBlockHookName]
        case .pyramidAttentionBroadcast: return [Model.pyramidAttentionBroadcastHookName]
        case .taylorSeerCache: return [Model.taylorSeerHookName]
        case .teaCache: return [Model.teaCacheLeaderHookName, Model.teaCacheBlockHookName]
        case .seaCache: return [Model.seaCacheBlockHookName, Model.seaCacheLeaderHookName, Model.seaCacheRootHookName]
        case .textKVCache: return [Model.textKVCacheBlockHookName, Model.textKVCacheRootHookName]
        }
    }

    /// diffusers' config class name (messages).
    public var configName: String {
        switch self {
        case .fasterCache: return "FasterCacheConfig"
        case .firstBlockCache: return "FirstBlockCacheConfig"
        case .magCache: return "MagCacheConfig"
        case .pyramidAttentionBroadcast: return "PyramidAttentionBroadcastConfig"
        case .taylorSeerCache: return "TaylorSeerCacheConfig"
        case .teaCache: return "TeaCacheConfig"
        case .seaCache: return "SeaCacheConfig"
        case .textKVCache: return "TextKVCacheConfig"
        }
    }
}

extension Model {
    /// The cache `enable_cache` installed (found from the hooks present, so an `apply_*` call
    /// counts too; diffusers stores the config instead).
    public var enabledCache: CacheKind? {
        let names = Set(allHookRegistries.flatMap(\.hookNames))
        return CacheKind.allCases.first { $0.hookNames.contains(where: names.contains) }
    }

    /// `enable_cache(config)`: refuses while a cache is enabled, then applies.
    public func enableCache(_ kind: CacheKind, _ apply: () throws -> Void) throws {
        if let on = enabledCache {
            throw DiffAttnError.value("Caching has already been enabled with \(on.configName). To apply a new caching technique, please disable the existing one first.")
        }
        try apply()
    }

    /// `disable_cache()`: removes the enabled cache's hooks recursively from the root and resets
    /// the cache context. Returns false when nothing was enabled (diffusers logs a warning).
    @discardableResult
    public func disableCache() throws -> Bool {
        guard let on = enabledCache else { return false }
        let root = try hookRegistry(at: "")
        for name in on.hookNames { try root.remove(name, recurse: true) }
        setCacheContext(nil)
        return true
    }
}
