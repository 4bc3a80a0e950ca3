import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// diffusers' `ModuleGroup` (hooks/group_offloading.py:ModuleGroup): modules whose weights move together. Members are
/// the library's weight holders — attention modules and host weight nodes — of the group's
/// modules; `leaders` are the modules whose bracketed call onloads (first) and offloads (last).
final class ModuleGroup: @unchecked Sendable {
    enum Member {
        case attention(Attention)
        case weights(ModuleNode)
    }

    enum State {
        case offloaded
        case loading
        case staged([Tensor])
        case failed(DiffAttnError)
        case resident
    }

    let id: String
    let members: [(path: String, member: Member)]
    let onloadLeader: String
    let offloadLeader: String
    let store: OffloadStore
    /// Element counts of every tensor, in member order.
    let counts: [Int]
    let bytes: Int
    var state: State = .resident
    /// diffusers' `onload_self`: false once the learned order lets a predecessor prefetch it.
    var onloadSelf = true
    /// Calls (on any thread) computing with or reading these weights now: a pinned group is never
    /// released; a release asked for meanwhile is deferred to the last unpin (`releasePending`).
    var pins = 0
    var releasePending = false

    init(id: String, members: [(String, Member)], onloadLeader: String, offloadLeader: String, store: OffloadStore) {
        self.id = id
        self.members = members.map { (path: $0.0, member: $0.1) }
        self.onloadLeader = onloadLeader
        self.offloadLeader = offloadLeader
        self.store = store
        var counts: [Int] = []
        for (_, m) in members {
            switch m {
            case .attention(let a): counts += a.parameters.specs.map { $0.shape.reduce(1, *) }
            case .weights(let n): counts += n.weights.map { $0.1.shape.reduce(1, *) }
            }
        }
        self.counts = counts
        bytes = counts.reduce(0, +) * 4
    }

    var isResident: Bool { if case .resident = state { return true } else { return false } }

    /// The resident tensors in member order (the data to store).
    func residentTensors() -> [Tensor] {
        members.flatMap { _, m -> [Tensor] in
            switch m {
            case .attention(let a): return a.parameters.residentValues
            case .weights(let n): return n.weights.map(\.1)
            }
        }
    }

    /// Frees the members' weights (they stay in `store`).
    func release() {
        for (_, m) in members {
            switch m {
            case .attention(let a): a.updateParameters { $0.releaseValues() }
            case .weights(let n):
                for i in n.weights.indices {
                    var empty = Tensor(shape: [0], storage: [])
                    empty.shape = n.weights[i].1.shape  // shape kept for state_dict(); storage gone
                    n.weights[i].1 = empty
                }
            }
        }
        state = .offloaded
    }

    /// Puts tensors read from the store back into the members.
    func install(_ tensors: [Tensor]) throws {
        guard tensors.count == counts.count else {
            throw DiffAttnError(.io, "group \(id): the store returned \(tensors.count) tensors, expected \(counts.count)")
        }
        var at = 0
        for (_, m) in members {
            switch m {
            case .attention(let a):
                let n = a.parameters.specs.count
                try a.updateParameters { try $0.installValues(Array(tensors[at..<at + n])) }
                at += n
            case .weights(let node):
                for i in node.weights.indices {
                    let shape = node.weights[i].1.shape
                    node.weights[i].1 = Tensor(shape: shape, storage: tensors[at].storage)
                    at += 1
                }
            }
        }
        state = .resident
    }

    /// Locks (or unlocks) the members' weights against edits while offloading manages them.
    func setLocked(_ locked: Bool) {
        for (path, m) in members {
            if case .attention(let a) = m { a.updateParameters { $0.offloadOwner = locked ? path : nil } }
        }
    }
}

/// Whether a node is a list (`ModuleList` / `Sequential` in diffusers): children named 0, 1, ….
func isModuleList(_ node: ModuleNode) -> Bool {
    !node.children.isEmpty && node.attention == nil && node.weights.isEmpty
        && node.children.enumerated().allSatisfy { $0.element.name == String($0.offset) }
}

/// The weight holders in a subtree (the node itself first), with their paths.
func weightHolders(_ node: ModuleNode, path: String) -> [(String, ModuleGroup.Member)] {
    var out: [(String, ModuleGroup.Member)] = []
    func visit(_ p: String, _ n: ModuleNode) {
        if let a = n.attention { out.append((p, .attention(a))) } else if !n.weights.isEmpty { out.append((p, .weights(n))) }
    }
    visit(path, node)
    node.walk(path) { p, n in visit(p, n) }
    return out
}
