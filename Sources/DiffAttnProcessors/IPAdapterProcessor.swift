import DiffAttnKernels
import DiffAttnModule

/// Family D (attention_processor.py:IPAdapterAttnProcessor): family A attention over the text tokens, plus for each adapter an
/// attention from the same queries to its image tokens, scaled and added before `to_out`.
struct IPAdapterPlan {
    var main: StandardPlan
    var text: AttentionInputs
    var images: [Tensor]
    var masks: [Tensor?]
}

extension Attention {
    /// Step 0 and 2: split the context, validate the region masks, plan the main attention.
    func planIPAdapter(_ inputs: AttentionInputs, _ recipe: ProcessorRecipe) throws -> IPAdapterPlan {
        let p = processor
        guard let e = inputs.encoderHiddenStates else {
            throw DiffAttnError.value("\(p.kind.name) needs encoder_hidden_states (text, [image embeddings]); with None diffusers fails with UnboundLocalError")
        }
        var text = inputs
        var images: [Tensor]
        if let given = inputs.ipHiddenStates {
            images = given
        } else {  // deprecated: the first adapter's tokens concatenated after the text tokens
            guard e.rank == 3, e.shape[1] >= p.numTokens[0] else {
                throw DiffAttnError.shape("encoder_hidden_states of shape \(describe(e.shape)) cannot hold the \(p.numTokens[0]) image tokens of the concatenated form")
            }
            let (b, s, c) = (e.shape[0], e.shape[1], e.shape[2]), split = s - p.numTokens[0]
            var t = Tensor(shape: [b, split, c], repeating: 0), ip = Tensor(shape: [b, s - split, c], repeating: 0)
            for bi in 0..<b {
                t.storage.replaceSubrange((bi * split * c)..<((bi + 1) * split * c), with: e.storage[(bi * s * c)..<((bi * s + split) * c)])
                ip.storage.replaceSubrange((bi * (s - split) * c)..<((bi + 1) * (s - split) * c), with: e.storage[((bi * s + split) * c)..<((bi + 1) * s * c)])
            }
            text.encoderHiddenStates = t
            images = [ip]
        }
        text.ipHiddenStates = nil
        let main = try planStandard(text, recipe)
        let batch = main.batch, width = derived.innerDim
        let adapters = min(images.count, p.scale.count, p.numTokens.count)  // zip truncates (attention_processor.py:IPAdapterAttnProcessor.__call__)
        var masks = [Tensor?](repeating: nil, count: images.count)
        let validates = !(p.kind == .ipAdapterXFormersAttnProcessor && images.isEmpty)
        if let given = inputs.ipAdapterMasks, validates {
            guard given.count == p.scale.count, given.count == images.count else {
                throw DiffAttnError.value("Length of ip_adapter_masks array (\(given.count)) must match length of self.scale array (\(p.scale.count)) and number of ip_hidden_states (\(images.count))")
            }
            for (k, m) in given.enumerated() {
                guard let m else { continue }
                guard m.rank == 4, m.shape[0] == 1 else {
                    throw DiffAttnError.value("Each element of the ip_adapter_masks array should be a tensor with shape [1, num_images_for_ip_adapter, height, width]. Please use `IPAdapterMaskProcessor` to preprocess your mask")
                }
                guard images[k].rank == 4, m.shape[1] == images[k].shape[1] else {
                    throw DiffAttnError.value("Number of masks (\(m.shape[1])) does not match number of ip images (\(images[k].rank == 4 ? images[k].shape[1] : images[k].shape[0])) at index \(k)")
                }
                if case .perImage(let s) = p.scale[k], s.count != m.shape[1] {
                    throw DiffAttnError.value("Number of masks (\(m.shape[1])) does not match number of scales (\(s.count)) at index \(k)")
                }
                _ = try checkedElementCount([batch, main.queryLength], "a downsampled region mask")
                masks[k] = m
            }
        }
        for k in 0..<adapters {
            let ip = images[k]
            try checkImageTokens(ip, adapter: k, batch: batch)
            if masks[k] == nil, case .perImage = p.scale[k], !p.scale[k].isZero {
                throw DiffAttnError.type("unsupported operand type(s) for *: 'list' and 'Tensor': a per-image scale list for adapter \(k) needs ip_adapter_masks")
            }
            if masks[k] != nil && ip.rank != 4 {
                throw DiffAttnError.shape("ip_hidden_states[\(k)] must be 4-D (batch, images, tokens, channels) when a region mask is given")
            }
        }
        _ = try checkedElementCount([batch, images.map { $0.count / max(batch, 1) }.max() ?? 0, width], "an image-token projection")
        guard parameters.spec(named: "processor.to_k_ip.0.weight")!.shape[0] == width else {
            throw DiffAttnError.shape("the IP-Adapter projections are \(parameters.spec(named: "processor.to_k_ip.0.weight")!.shape[0]) wide but inner_dim is \(width); hidden_size must equal the module's inner_dim")
        }
        return IPAdapterPlan(main: main, text: text, images: Array(images.prefix(adapters)), masks: masks)
    }

    /// Steps 1, 3, 4.
    func runIPAdapter(_ plan: IPAdapterPlan) throws -> Tensor {
        let p = processor, kernel = plan.main.recipe.kernel
        var pieces = try standardAttention(plan.text, plan.main)
        let (batch, queries) = (plan.main.batch, plan.main.queryLength)
        let width = pieces.attended.shape[2]
        for (k, ip) in plan.images.enumerated() where !p.scale[k].isZero {
            func imageAttention(_ tokens: Tensor) throws -> Tensor {
                try self.imageAttention(query: pieces.query, tokens: tokens, adapter: k, heads: plan.main.heads, kernel: kernel)
            }
            if let mask = plan.masks[k] {
                let images = ip.shape[1], t = ip.shape[2], c = ip.shape[3]
                for i in 0..<images {
                    var tokens = Tensor(shape: [batch, t, c], repeating: 0)
                    for bi in 0..<batch {
                        tokens.storage.replaceSubrange((bi * t * c)..<((bi + 1) * t * c),
                                                       with: ip.storage[((bi * images + i) * t * c)..<((bi * images + i + 1) * t * c)])
                    }
                    let out = try imageAttention(tokens)
                    let region = try downsampleRegionMask(mask, image: i, batch: batch, queries: queries,
                                                          halfPrecision: p.kind == .ipAdapterXFormersAttnProcessor)
                    let s: Float
                    switch p.scale[k] { case .uniform(let u): s = u; case .perImage(let list): s = list[i] }
                    for r in 0..<(batch * queries) {
                        let m = s * region[r]
                        for j in 0..<width { pieces.attended.storage[r * width + j] += m * out.storage[r * width + j] }
                    }
                }
            } else {
                let out = try imageAttention(ip)
                guard case .uniform(let s) = p.scale[k] else { continue }
                addScaled(&pieces.attended, s, out)
            }
        }
        return try standardOutput(pieces.attended, residual: plan.text.hiddenStates)
    }
}

// The steps the classic IP-Adapter shares with the Flux IP-Adapter (transformer_flux.py:FluxIPAdapterAttnProcessor.__call__).
extension Attention {
    /// Adapter `k`'s image tokens: (B, tokens, C) or (B, images, tokens, C), C the width its
    /// `to_k_ip` takes.
    func checkImageTokens(_ ip: Tensor, adapter k: Int, batch: Int) throws {
        let input = parameters.spec(named: "processor.to_k_ip.\(k).weight")!.shape[1]
        guard (ip.rank == 3 || ip.rank == 4), ip.shape[0] == batch, ip.shape.last == input, ip.shape[1] > 0 else {
            throw DiffAttnError.shape("ip_hidden_states[\(k)] must be (\(batch), tokens, \(input)) or (\(batch), images, tokens, \(input)), got shape \(describe(ip.shape))")
        }
    }

    /// `attention(query, to_k_ip[k](P), to_v_ip[k](P))`; a 4-D `P` joins every image's tokens into
    /// one key sequence (one joint softmax).
    func imageAttention(query: Tensor, tokens ip: Tensor, adapter k: Int, heads: Int, kernel: KernelChoice) throws -> Tensor {
        let tokens = ip.rank == 4 ? ip.reshaped([ip.shape[0], ip.shape[1] * ip.shape[2], ip.shape[3]]) : ip
        let key = try project(tokens, "processor.to_k_ip.\(k)"), value = try project(tokens, "processor.to_v_ip.\(k)")
        return attend(query: query, key: key, value: value, heads: heads, mask: nil, kernel: kernel)
    }
}

/// `acc += s · x` (same shapes).
func addScaled(_ acc: inout Tensor, _ s: Float, _ x: Tensor) {
    for i in 0..<x.count { acc.storage[i] += s * x.storage[i] }
}
