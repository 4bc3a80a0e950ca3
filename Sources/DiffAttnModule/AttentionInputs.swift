import DiffAttnKernels

/// The arguments of `Attention.forward`.
public struct AttentionInputs: Sendable {
    public var hiddenStates: Tensor
    public var encoderHiddenStates: Tensor?
    public var attentionMask: AttentionMask?
    public var temb: Tensor?
    /// IP-Adapter image embeddings, one per adapter: non-nil means `encoder_hidden_states` was the
    /// tuple `(text, [ip…])`; nil with an IP-Adapter processor means the deprecated concatenated form.
    public var ipHiddenStates: [Tensor]?
    /// `ip_adapter_masks`: one (1, images, h, w) region mask or None per adapter.
    public var ipAdapterMasks: [Tensor?]?
    /// The DiT processors' extra keywords (rotary tables, …).
    public var dit = DiTInputs()

    public init(hiddenStates: Tensor, encoderHiddenStates: Tensor? = nil,
                attentionMask: AttentionMask? = nil, temb: Tensor? = nil,
                ipHiddenStates: [Tensor]? = nil, ipAdapterMasks: [Tensor?]? = nil, dit: DiTInputs = DiTInputs()) {
        self.dit = dit
        self.hiddenStates = hiddenStates
        self.encoderHiddenStates = encoderHiddenStates
        self.attentionMask = attentionMask
        self.temb = temb
        self.ipHiddenStates = ipHiddenStates
        self.ipAdapterMasks = ipAdapterMasks
    }
}
