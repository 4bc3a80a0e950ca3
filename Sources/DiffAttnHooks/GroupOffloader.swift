import DiffAttnKernels
import Glibc
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// Counters of one model's group offloading (for tests and benchmarks).
public struct GroupOffloadStats: Sendable {
    public var groups = 0
    public var residentGroups = 0
    public var residentBytes = 0
    /// The most weight bytes resident (or staged by the prefetcher) at once since enabling.
    public var peakResidentBytes = 0
    public var totalBytes = 0
    public var onloads = 0
    /// Onloads served by the prefetch thread (the data was ready or being read ahead).
    public var prefetched = 0
    /// Whether the execution order has been learned (after the first step, with `useStream`).
    public var orderLearned = false
}

/// The runtime of group offloading for one model: which groups are resident, the learned order,
/// and the prefetch thread (the CPU counterpart of use_stream in hooks/group_offloading.py:ModuleGroup).
///
/// Onload on first touch (a member's forward, a weight read, or the leader's bracketed call);
/// release when the offload leader's call ends, when the model moves on to another chain group,
/// and at `endStep`. Every call that computes with a group's weights pins it for its duration
/// (`pin` / `unpin`), so that threads running different modules of one model at once never see
/// weights released under them: a release of a pinned group waits for its last unpin. With `useStream` the first step records the order groups are touched in; later
/// steps read the next group on the prefetch thread while the current one computes.
final class GroupOffloader: @unchecked Sendable {
    let config: GroupOffloadConfig
    let groups: [ModuleGroup]
    /// The group of the model's own weights (diffusers' unmatched group), resident for a whole step.
    let rootGroups: Set<ObjectIdentifier>
    private var groupByMember: [String: ModuleGroup] = [:]

    /// Guards everything below; its condition signals state changes of groups and the queue.
    private let lock = Locked()
    private var active: ModuleGroup?
    private var recording: [ModuleGroup] = []
    private var learning: Bool
    private var nextOf: [ObjectIdentifier: ModuleGroup] = [:]
    private var firstInOrder: ModuleGroup?
    private var stats = GroupOffloadStats()
    private var queue: [ModuleGroup] = []
    private var worker: pthread_t?
    private var stopping = false

    init(config: GroupOffloadConfig, groups: [ModuleGroup], rootGroups: [ModuleGroup]) {
        self.config = config
        self.groups = groups
        self.rootGroups = Set(rootGroups.map(ObjectIdentifier.init))
        learning = config.useStream
        for g in groups { for (p, _) in g.members { groupByMember[p] = g } }
        stats.groups = groups.count
        stats.totalBytes = groups.reduce(0) { $0 + $1.bytes }
        stats.residentBytes = stats.totalBytes
        stats.peakResidentBytes = stats.totalBytes
    }

    /// Stops the prefetch thread (it holds a reference to this object while it runs).
    func shutdown() { stopWorker() }

    private func locked<T>(_ body: () throws -> T) rethrows -> T { try lock.run(body) }

    func group(ofMember path: String) -> ModuleGroup? { groupByMember[path] }

    var currentStats: GroupOffloadStats {
        locked {
            var s = stats
            s.residentGroups = groups.filter(\.isResident).count
            s.orderLearned = firstInOrder != nil
            return s
        }
    }

    private func account(_ delta: Int) {
        stats.residentBytes += delta
        stats.peakResidentBytes = max(stats.peakResidentBytes, stats.residentBytes)
    }

    /// Writes every group's store and releases the weights. Nothing is released unless every
    /// store was written.
    func offloadAll() throws {
        for g in groups { try g.store.write(g.residentTensors()) }
        locked {
            for g in groups { g.setLocked(true); g.release() }
            stats.residentBytes = 0
            stats.peakResidentBytes = 0  // from here on: what offloading keeps resident
        }
    }

    // MARK: onload / release

    /// Makes `g` resident (waiting for, or doing, its read) and pins it until `unpin`. `chain`: a
    /// block/leaf group touched in execution order (releases the previous chain group, records the
    /// order, prefetches the next).
    func pin(_ g: ModuleGroup, chain: Bool) throws {
        try locked {
            if chain && learning && recording.last !== g { recording.append(g) }
            if chain, let previous = active, previous !== g, previous.isResident { try releaseLocked(previous) }
            if chain { active = g; g.releasePending = false }
            try onloadLocked(g)
            g.pins += 1
            if chain, config.useStream, let next = nextOf[ObjectIdentifier(g)] { prefetchLocked(next) }
        }
    }

    /// Ends one pin of `g`; the last one carries out a release asked for while it was pinned.
    func unpin(_ g: ModuleGroup) throws {
        try locked {
            g.pins = max(0, g.pins - 1)
            if g.pins == 0 && g.releasePending {
                g.releasePending = false
                try releaseLocked(g)
            }
        }
    }

    /// Runs `body` with `g` resident and pinned (a host's weight read).
    func withPinned<R>(_ g: ModuleGroup, chain: Bool, _ body: () throws -> R) throws -> R {
        try pin(g, chain: chain)
        let result = Result { try body() }
        try unpin(g)
        return try result.get()
    }

    private func onloadLocked(_ g: ModuleGroup) throws {
        while true {
            switch g.state {
            case .resident: return
            case .loading: lock.wait()
            case .staged(let tensors):
                try g.install(tensors)
                stats.onloads += 1; stats.prefetched += 1
                return
            case .failed, .offloaded:
                // A failed prefetch is retried synchronously: the fault may have been cleared.
                g.state = .loading
                account(g.bytes)
                let result = lock.unlocked { Result { try g.store.read(g.counts) } }
                lock.broadcast()
                do {
                    try g.install(try result.get())
                    stats.onloads += 1
                    return
                } catch {
                    g.state = .offloaded
                    account(-g.bytes)
                    throw error
                }
            }
        }
    }

    private func releaseLocked(_ g: ModuleGroup) throws {
        if g.pins > 0 {  // another call computes with it: the last unpin releases
            if g.isResident { g.releasePending = true }
            if active === g { active = nil }
            return
        }
        switch g.state {
        case .resident:
            try g.store.repairIfNeeded(g.residentTensors())  // a deleted file is written again first
            g.release()
            account(-g.bytes)
        case .staged:
            g.state = .offloaded
            account(-g.bytes)
        default: break
        }
        if active === g { active = nil }
    }

    /// The offload leader's call ended: release its group.
    func leaderDone(_ g: ModuleGroup) throws { try locked { try releaseLocked(g) } }

    /// `beginStep`: the root group onloads (pinned) for the whole step; the first chain group is
    /// prefetched.
    func stepBegins() throws {
        try locked {
            for g in groups where rootGroups.contains(ObjectIdentifier(g)) { try onloadLocked(g); g.pins += 1 }
            if config.useStream, let first = firstInOrder { prefetchLocked(first) }
        }
    }

    /// `beginStep` failed after `stepBegins`: the root groups' step pins are dropped (they stay
    /// resident until `endStep` or the next release, as after any step).
    func stepAbandoned() {
        locked { for g in groups where rootGroups.contains(ObjectIdentifier(g)) { g.pins = max(0, g.pins - 1) } }
    }

    /// `endStep`: everything is released; after the first step the recorded order is frozen into
    /// the prefetch chain (diffusers' `LazyPrefetchGroupOffloadingHook.post_forward`, hooks/group_offloading.py:LazyPrefetchGroupOffloadingHook).
    func stepEnds() throws {
        try locked {
            while groups.contains(where: { if case .loading = $0.state { return true } else { return false } }) {
                lock.wait()
            }
            var firstError: Error?
            for g in groups where rootGroups.contains(ObjectIdentifier(g)) { g.pins = max(0, g.pins - 1) }
            for g in groups {
                do { try releaseLocked(g) } catch { if firstError == nil { firstError = error } }
            }
            active = nil
            if learning {
                learning = false
                for (a, b) in zip(recording, recording.dropFirst()) { nextOf[ObjectIdentifier(a)] = b; b.onloadSelf = false }
                firstInOrder = recording.first
                firstInOrder?.onloadSelf = false
                recording = []
            }
            if let firstError { throw firstError }
        }
    }

    /// Onloads everything (for `disableGroupOffload`); returns the first read error, after trying all.
    func onloadAll() -> Error? {
        stopWorker()
        return locked {
            var firstError: Error?
            for g in groups {
                do { try onloadLocked(g); g.setLocked(false) } catch { if firstError == nil { firstError = error } }
            }
            return firstError
        }
    }

    // MARK: the prefetch thread

    private func prefetchLocked(_ g: ModuleGroup) {
        guard case .offloaded = g.state else { return }
        g.state = .loading
        account(g.bytes)
        queue.append(g)
        if worker == nil { startWorker() }
        lock.broadcast()
    }

    private func startWorker() {
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { raw in
            let me = Unmanaged<GroupOffloader>.fromOpaque(raw!).takeRetainedValue()
            me.runWorker()
            return nil
        }, box.toOpaque())
        if rc == 0 { worker = t } else {
            box.release()
            // No thread: leave queued groups to load themselves on touch.
            for g in queue { g.state = .offloaded; account(-g.bytes) }
            queue = []
        }
    }

    private func runWorker() {
        locked {
            while true {
                while queue.isEmpty && !stopping { lock.wait() }
                if stopping { break }
                let g = queue.removeFirst()
                let result = lock.unlocked { Result { try g.store.read(g.counts) } }
                switch result {
                case .success(let t): g.state = .staged(t)
                case .failure(let e):
                    g.state = .failed((e as? DiffAttnError) ?? DiffAttnError(.io, "\(e)"))
                    account(-g.bytes)
                }
                lock.broadcast()
            }
        }
    }

    private func stopWorker() {
        let t: pthread_t? = locked {
            stopping = true
            lock.broadcast()
            let t = worker
            worker = nil
            return t
        }
        if let t { pthread_join(t, nil) }
        locked {
            for g in queue { g.state = .offloaded; account(-g.bytes) }
            queue = []
            stopping = false
        }
    }
}
