import DiffAttnKernels
import DiffAttnModule
import DiffAttnProcessors
import DiffAttnModels

/// One value of a module call: what diffusers' hooks see in `*args, **kwargs` and in an output tuple.
public enum HookValue: Sendable {
    case none
    case tensor(Tensor)
    case number(Double)

    public var tensor: Tensor? { if case .tensor(let t) = self { return t } else { return nil } }
}

/// A module call's arguments (positional first, then keywords, as `*args, **kwargs`) or its
/// outputs (all positional, unnamed): diffusers' `ModelHook` sees and replaces these whole
/// (spec hooks-newer §1.1; issue 16).
public struct HookArgs: Sendable {
    public struct Entry: Sendable {
        public var name: String
        public var positional: Bool
        public var value: HookValue
        public init(_ name: String, positional: Bool, _ value: HookValue) {
            self.name = name; self.positional = positional; self.value = value
        }
    }

    public private(set) var entries: [Entry] = []

    public init() {}

    /// Outputs: every value positional and unnamed.
    public init(outputs: [HookValue]) { entries = outputs.map { Entry("", positional: true, $0) } }

    public var count: Int { entries.count }
    public var values: [HookValue] { entries.map(\.value) }

    public subscript(keyword name: String) -> HookValue? {
        entries.first { !$0.positional && $0.name == name }?.value
    }

    /// Inserts before `index` (== count appends), keeping positional entries before keywords and
    /// keyword names unique.
    public mutating func insert(_ entry: Entry, at index: Int) throws {
        guard index >= 0, index <= entries.count else {
            throw DiffAttnError.argument("index \(index) is outside 0...\(entries.count)")
        }
        if entry.positional {
            guard entries[..<index].allSatisfy(\.positional) else {
                throw DiffAttnError.value("a positional argument cannot follow a keyword argument ('\(entry.name)' at \(index))")
            }
        } else {
            guard entries[index...].allSatisfy({ !$0.positional }) else {
                throw DiffAttnError.value("keyword argument '\(entry.name)' cannot precede a positional argument")
            }
            guard !entries.contains(where: { !$0.positional && $0.name == entry.name }) else {
                throw DiffAttnError.value("keyword argument repeated: '\(entry.name)'")
            }
        }
        entries.insert(entry, at: index)
    }

    public mutating func append(_ name: String, positional: Bool, _ value: HookValue) throws {
        try insert(Entry(name, positional: positional, value), at: entries.count)
    }

    public mutating func set(_ index: Int, _ value: HookValue) throws {
        try check(index)
        entries[index].value = value
    }

    public mutating func remove(_ index: Int) throws {
        try check(index)
        entries.remove(at: index)
    }

    public mutating func removeAll() { entries.removeAll() }

    func check(_ index: Int) throws {
        guard index >= 0, index < entries.count else {
            throw DiffAttnError.argument("index \(index) is outside the \(entries.count) values")
        }
    }
}

// MARK: attention calls as argument lists

/// The keywords under which an attention call's inputs are shown to argument-list hooks
/// (include/diffattn.h, "argument and output lists"). Inputs without a name here (IP-Adapter
/// lists, Allegro/Lumina tables) pass through unchanged.
public enum AttentionArgumentName {
    public static let hiddenStates = "hidden_states", encoderHiddenStates = "encoder_hidden_states"
    public static let attentionMask = "attention_mask", booleanMask = "attention_mask_bool", temb = "temb"
    public static let rotaryCos = "image_rotary_emb_cos", rotarySin = "image_rotary_emb_sin"
}

extension AttentionInputs {
    /// diffusers calls an attention module with `hidden_states` positionally and the rest by keyword.
    public var hookArgs: HookArgs {
        typealias N = AttentionArgumentName
        var a = HookArgs()
        func add(_ name: String, _ pos: Bool, _ t: Tensor?) { if let t { try? a.append(name, positional: pos, .tensor(t)) } }
        add(N.hiddenStates, true, hiddenStates)
        add(N.encoderHiddenStates, false, encoderHiddenStates)
        switch attentionMask {
        case .additive(let t)?: add(N.attentionMask, false, t)
        case .boolean(let b)?: add(N.booleanMask, false, Tensor(shape: b.shape, storage: b.storage.map { $0 != 0 ? 1 : 0 }))
        case nil: break
        }
        add(N.temb, false, temb)
        add(N.rotaryCos, false, dit.rotary?.cos)
        add(N.rotarySin, false, dit.rotary?.sin)
        return a
    }

    /// These inputs with what a hook left in `args` (names it removed become absent).
    public func replacing(with args: HookArgs) throws -> AttentionInputs {
        typealias N = AttentionArgumentName
        func tensor(_ name: String, positional: Bool = false) throws -> Tensor? {
            guard let e = args.entries.first(where: { $0.name == name && $0.positional == positional }) else { return nil }
            switch e.value {
            case .none: return nil
            case .tensor(let t): return t
            case .number: throw DiffAttnError.type("attention argument '\(name)' must be a tensor or none, got a number")
            }
        }
        guard let hidden = try tensor(N.hiddenStates, positional: true) ?? tensor(N.hiddenStates) else {
            throw DiffAttnError.value("an attention call needs `hidden_states` (the first positional argument); a hook removed it")
        }
        var out = self
        out.hiddenStates = hidden
        out.encoderHiddenStates = try tensor(N.encoderHiddenStates)
        if let m = try tensor(N.attentionMask) {
            out.attentionMask = .additive(m)
        } else if let b = try tensor(N.booleanMask) {
            out.attentionMask = .boolean(BoolTensor(shape: b.shape, storage: b.storage.map { $0 != 0 ? 1 : 0 }))
        } else {
            out.attentionMask = nil
        }
        out.temb = try tensor(N.temb)
        let cos = try tensor(N.rotaryCos), sin = try tensor(N.rotarySin)
        guard (cos == nil) == (sin == nil) else {
            throw DiffAttnError.value("image_rotary_emb needs both image_rotary_emb_cos and image_rotary_emb_sin")
        }
        out.dit.rotary = cos.map { RotaryPair(cos: $0, sin: sin!) }
        return out
    }
}

extension HookArgs {
    /// An attention module's outputs: tensors only.
    func attentionOutputs() throws -> [Tensor] {
        try values.enumerated().map { i, v in
            guard let t = v.tensor else { throw DiffAttnError.type("output \(i) of an attention module must be a tensor") }
            return t
        }
    }
}

// MARK: running argument-list hooks

extension HookRegistry {
    /// One argument-list hook around an attention call: the inputs shown as `*args, **kwargs`, its
    /// replacements read back, the outputs shown as a value list.
    func invokeWithArguments(_ hook: ModelHook, _ inputs: AttentionInputs,
                             _ inner: (AttentionInputs) throws -> [Tensor]) throws -> [Tensor] {
        var args = inputs.hookArgs
        try hook.preForward(self, arguments: &args)
        let template = inputs
        func run(_ a: HookArgs) throws -> HookArgs {
            HookArgs(outputs: try inner(try template.replacing(with: a)).map { .tensor($0) })
        }
        var out = hook.hasNewForward ? try hook.newForward(self, arguments: args, run) : try run(args)
        try hook.postForward(self, outputs: &out)
        return try out.attentionOutputs()
    }

    /// A host-run module called through its hooks (`da_model_call_module`): diffusers' chain
    /// around the host's `forward`, the last registered hook outermost. Built-in hooks run their
    /// host-run halves (pre-forward with no inputs before, post-forward with no outputs after);
    /// argument-list hooks see and may replace the arguments and outputs.
    public func callModule(_ args: HookArgs, _ forward: (HookArgs) throws -> HookArgs) throws -> HookArgs {
        let chain = lockedHooks()
        func invoke(_ k: Int, _ args: HookArgs) throws -> HookArgs {
            guard k >= 0 else { return try forward(args) }
            let hook = chain[k]
            guard hook.usesArgumentLists else {
                var none: AttentionInputs? = nil
                try hook.preForward(self, &none)
                let out = try invoke(k - 1, args)
                var empty: [Tensor] = []
                try hook.postForward(self, &empty)
                return out
            }
            var a = args
            try hook.preForward(self, arguments: &a)
            var out = hook.hasNewForward ? try hook.newForward(self, arguments: a) { try invoke(k - 1, $0) }
                                         : try invoke(k - 1, a)
            try hook.postForward(self, outputs: &out)
            return out
        }
        return try invoke(chain.count - 1, args)
    }
}

extension Model {
    /// `da_model_call_module`: the module at `path` (a host-run one) called through its hooks.
    public func callModule(_ path: String, _ args: HookArgs, _ forward: (HookArgs) throws -> HookArgs) throws -> HookArgs {
        try hookRegistry(at: path).callModule(args, forward)
    }
}
