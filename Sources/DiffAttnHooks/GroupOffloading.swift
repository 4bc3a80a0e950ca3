import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// diffusers' `GroupOffloadingHook` (name `group_offloading`, hooks/group_offloading.py:GroupOffloadingHook), one per hooked module:
/// leaders (block modules, the root) and every weight holder of a group, so that calling any
/// module of a group onloads it ("first touch"; diffusers would fail with a device mismatch).
final class GroupOffloadingHook: ModelHook, @unchecked Sendable {
    unowned let offloader: GroupOffloader
    unowned let group: ModuleGroup?  // the offloader owns groups; a strong one here would keep the model alive through its hook registries
    let isRoot: Bool

    init(_ offloader: GroupOffloader, _ group: ModuleGroup?, isRoot: Bool) {
        self.offloader = offloader; self.group = group; self.isRoot = isRoot
    }

    override var hookDescription: String { "GroupOffloadingHook(group=\(group?.id ?? "none"))" }

    /// An attention module's call is bracketed in `newForward`, so that its pin is dropped even
    /// when the forward fails; host-run modules are bracketed by `enter` / `exit`.
    override var hasNewForward: Bool { true }

    private var chain: Bool { group.map { !offloader.rootGroups.contains(ObjectIdentifier($0)) } ?? false }

    override func preForward(_ module: HookRegistry, _ inputs: inout AttentionInputs?) throws {
        if isRoot { try offloader.stepBegins(); return }
        guard let group, module.attention == nil else { return }
        try offloader.pin(group, chain: chain)
    }

    override func newForward(_ module: HookRegistry, _ inputs: AttentionInputs?,
                             _ next: (AttentionInputs?) throws -> [Tensor]) throws -> [Tensor] {
        guard let group, !isRoot, module.attention != nil else { return try next(inputs) }
        try offloader.pin(group, chain: chain)
        let result = Result { try next(inputs) }
        try offloader.unpin(group)
        let out = try result.get()
        try callEnded(module, group)
        return out
    }

    override func abandonForward(_ module: HookRegistry) {
        if isRoot { offloader.stepAbandoned(); return }
        guard let group, module.attention == nil else { return }
        try? offloader.unpin(group)
    }

    override func postForward(_ module: HookRegistry, _ output: inout [Tensor]) throws {
        if isRoot { try offloader.stepEnds(); return }
        guard let group, module.attention == nil else { return }
        try offloader.unpin(group)
        try callEnded(module, group)
    }

    /// The offload leader's call ended: its group is released (once no other call pins it).
    private func callEnded(_ module: HookRegistry, _ group: ModuleGroup) throws {
        guard module.path == group.offloadLeader, chain else { return }
        try offloader.leaderDone(group)
    }
}

extension Model {
    static let groupOffloadHookName = "group_offloading"

    /// `enable_group_offload(...)` / `apply_group_offloading(model, ...)` (hooks/group_offloading.py:apply_group_offloading). All
    /// weights are written to the offload target first; if that fails nothing has changed.
    public func enableGroupOffload(_ requested: GroupOffloadConfig) throws {
        let config = try requested.validated()
        guard offloader == nil else {
            throw DiffAttnError.state("group offloading is already enabled on this \(modelClass.name); disable it first")
        }
        var groups: [ModuleGroup] = []
        var rootGroups: [ModuleGroup] = []
        var leaders: [(String, ModuleGroup)] = []  // (hooked module path, group)
        func store(_ id: String) -> OffloadStore {
            config.offloadToDiskPath.map { DiskStore(directory: $0, groupID: id) } ?? MemoryStore()
        }
        func add(_ id: String, _ members: [(String, ModuleGroup.Member)], on: String, off: String) -> ModuleGroup? {
            guard !members.isEmpty else { return nil }
            let g = ModuleGroup(id: id, members: members, onloadLeader: on, offloadLeader: off, store: store(id))
            groups.append(g)
            return g
        }
        switch config.offloadType {
        case .blockLevel:
            func blockLevel(_ node: ModuleNode, _ path: String, _ prefix: String) {
                var unmatched: [(String, ModuleGroup.Member)] = []
                if !node.weights.isEmpty { unmatched.append((path, .weights(node))) }
                for child in node.children {
                    let p = path.isEmpty ? child.name : path + "." + child.name
                    if config.blockModules?.contains(child.name) == true {
                        blockLevel(child, p, prefix + child.name + ".")
                    } else if isModuleList(child) {
                        let n = config.numBlocksPerGroup!
                        for start in stride(from: 0, to: child.children.count, by: n) {
                            let end = min(start + n, child.children.count) - 1
                            let chunk = child.children[start...end].map { (p + "." + $0.name, $0) }
                            let members = chunk.flatMap { weightHolders($0.1, path: $0.0) }
                            if let g = add("\(prefix)\(child.name)_\(start)_\(end)", members, on: chunk.first!.0, off: chunk.last!.0) {
                                for (cp, _) in chunk { leaders.append((cp, g)) }
                            }
                        }
                    } else {
                        unmatched += weightHolders(child, path: p)
                    }
                }
                let cls = path.isEmpty ? modelClass.name : node.moduleClass
                if let g = add("\(prefix)\(cls)_unmatched_group", unmatched, on: path, off: path) {
                    rootGroups.append(g)
                    leaders.append((path, g))
                }
            }
            blockLevel(root, "", "")
        case .leafLevel:
            for (p, m) in weightHolders(root, path: "").filter({ !$0.0.isEmpty }) { _ = add(p, [(p, m)], on: p, off: p) }
            if !root.weights.isEmpty, let g = add("", [("", .weights(root))], on: "", off: "") { rootGroups.append(g) }
        }
        let off = GroupOffloader(config: config, groups: groups, rootGroups: rootGroups)
        try off.offloadAll()
        offloader = off
        // Hooks: the root (step bracket), each leader, each weight holder (first touch).
        var hooked = Set<String>()
        func hook(_ path: String, _ group: ModuleGroup?, isRoot: Bool = false) {
            guard hooked.insert(path).inserted, let node = try? module(at: path) else { return }
            try? registry(for: node, path: path).register(GroupOffloadingHook(off, group, isRoot: isRoot), name: Model.groupOffloadHookName)
        }
        hook("", rootGroups.first { $0.onloadLeader == "" }, isRoot: true)
        for (p, g) in leaders { hook(p, g) }
        for g in groups { for (p, _) in g.members { hook(p, g) } }
    }

    /// Removes group offloading: every group is onloaded, hooks are removed, weights unlocked. A
    /// group whose store cannot be read stays released (its module then reports an error when
    /// called) and the read error is returned after everything else was done; reloading those
    /// weights (load_state_dict / a checkpoint) makes the model whole again.
    public func disableGroupOffload() throws {
        guard let off = offloader else { return }
        let readError = off.onloadAll()
        for g in off.groups { g.setLocked(false) }
        try hookRegistry(at: "").remove(Model.groupOffloadHookName, recurse: true)
        offloader = nil
        if let readError { throw readError }
    }

    public var groupOffloadStats: GroupOffloadStats? { offloader?.currentStats }
    public var isGroupOffloadEnabled: Bool { offloader != nil }
}
