/// A processor as diffusers constructs it: the class (kind) and its constructor arguments.
/// Processors hold no computation of their own; `ProcessorRecipe` says which shared steps a
/// kind runs.
public struct ProcessorConfig: Sendable, Equatable {
    public var kind: ProcessorKind
    /// `SlicedAttnProcessor(slice_size)` and `SlicedAttnAddedKVProcessor(slice_size)`.
    public var sliceSize: Int?

    public init(kind: ProcessorKind, sliceSize: Int? = nil) {
        self.kind = kind
        self.sliceSize = sliceSize
    }

    /// Whether this build computes `kind` (the enum reserves every diffusers class up front).
    public static func isImplemented(_ kind: ProcessorKind) -> Bool {
        ProcessorRecipe.recipe(for: kind) != nil
    }

    /// The checks diffusers' constructor makes (and a port's guards where diffusers has none).
    func validateConstruction() throws {
        guard ProcessorConfig.isImplemented(kind) else {
            throw DiffAttnError(.unsupported, "\(kind.name) is not implemented in this version of libdiffattn")
        }
        if let s = sliceSize, s < 1 {
            throw DiffAttnError.value("slice_size must be at least 1, got \(s)")
        }
    }
}
