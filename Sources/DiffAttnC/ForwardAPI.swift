import CDiffAttnHeader
import DiffAttn
import DiffAttnKernels

// Thunks for Attention.forward and the module's helper methods.

@_cdecl("da_forward_args_init")
public func da_forward_args_init(_ args: UnsafeMutablePointer<da_forward_args>?, _ size: Int) -> da_status {
    initStruct(args, size, "args") { da_forward_args() }
}

/// The forward's inputs; hidden and encoder states are read in place when `loans` is given (the
/// caller then ends them before returning).
private func readInputs(_ args: UnsafePointer<da_forward_args>?, _ loans: UnsafeMutablePointer<Loans>? = nil) throws -> AttentionInputs {
    let argsValue = try readStruct(args, "args")
    let a = argsValue
    guard a.hidden_states != nil else { throw DiffAttnError.argument("args->hidden_states is NULL; it is required") }
    var inputs = AttentionInputs(
        hiddenStates: try loans?.pointee.tensor(a.hidden_states, "hidden_states") ?? readTensor(a.hidden_states, "hidden_states"),
        encoderHiddenStates: try loans.map { try $0.pointee.optionalTensor(a.encoder_hidden_states, "encoder_hidden_states") }
            ?? readOptionalTensor(a.encoder_hidden_states, "encoder_hidden_states"),
        attentionMask: try readMask(a.attention_mask, "attention_mask"),
        temb: try readOptionalTensor(a.temb, "temb"))
    if a.ip_hidden_states_given != 0 {
        let n = Int(a.num_ip_hidden_states)
        guard n >= 0 && n <= 1024 else { throw DiffAttnError.argument("args->num_ip_hidden_states must be in 0...1024, got \(n)") }
        guard n == 0 || a.ip_hidden_states != nil else { throw DiffAttnError.argument("args->ip_hidden_states is NULL with num_ip_hidden_states \(n)") }
        inputs.ipHiddenStates = try (0..<n).map { try readTensor(a.ip_hidden_states! + $0, "ip_hidden_states[\($0)]") }
    }
    if let masks = a.ip_adapter_masks {
        let n = Int(a.num_ip_adapter_masks)
        guard n >= 0 && n <= 1024 else { throw DiffAttnError.argument("args->num_ip_adapter_masks must be in 0...1024, got \(n)") }
        inputs.ipAdapterMasks = try (0..<n).map { try readOptionalTensor(masks[$0], "ip_adapter_masks[\($0)]") }
    }
    inputs.dit = try readDiTArgs(a.dit)
    return inputs
}

/// Runs a forward over lent inputs; with `check`, planned first and `check` sees the output shapes
/// before anything runs. The inputs and the plan live only in here, so that afterwards `loans`
/// sees which tensors were kept.
private func forwardLending(_ a: Attention, _ args: UnsafePointer<da_forward_args>?, _ loans: inout Loans,
                            check: (([[Int]]) throws -> Void)? = nil) throws -> [Tensor] {
    let inputs = try withUnsafeMutablePointer(to: &loans) { try readInputs(args, $0) }
    guard let check else { return try a.forward(inputs) }
    let plan = try a.plan(inputs)
    try check(plan.outputShapes)
    return try a.forward(plan)
}

@_cdecl("da_attention_output_shapes")
public func da_attention_output_shapes(_ attention: OpaquePointer?, _ args: UnsafePointer<da_forward_args>?,
                                       _ shapes: UnsafeMutablePointer<da_output_shapes>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        let shapesOut = try writableStruct(shapes, "shapes")
        var loans = Loans()   // read in place: only the shapes are needed
        defer { loans.end() }
        let result = try withUnsafeMutablePointer(to: &loans) { try a.outputShapes(try readInputs(args, $0)) }
        shapesOut.pointee.count = Int32(result.count)
        withUnsafeMutableBytes(of: &shapesOut.pointee.ndim) { ndim in
            withUnsafeMutableBytes(of: &shapesOut.pointee.shape) { dims in
                let n = ndim.bindMemory(to: Int32.self), d = dims.bindMemory(to: Int64.self)
                for (i, shape) in result.enumerated() {
                    n[i] = Int32(shape.count)
                    for (j, s) in shape.enumerated() { d[i * Int(DA_MAX_NDIM) + j] = Int64(s) }
                }
            }
        }
    }
}

@_cdecl("da_attention_forward")
public func da_attention_forward(_ attention: OpaquePointer?, _ args: UnsafePointer<da_forward_args>?,
                                 _ outputs: UnsafeMutablePointer<DLTensor>?, _ numOutputs: Int32) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        var loans = Loans()
        defer { loans.end() }
        let results = try forwardLending(a, args, &loans) { shapes in
            guard let outputs else { throw DiffAttnError.argument("outputs is NULL; expected \(shapes.count) DLTensor(s)") }
            guard Int(numOutputs) == shapes.count else {
                throw DiffAttnError.argument("num_outputs is \(numOutputs); \(a.processor.kind.name) returns \(shapes.count) tensor(s)")
            }
            // Check every destination before computing, so that nothing is written on failure.
            for (i, shape) in shapes.enumerated() { _ = try checkedOutput(outputs + i, "outputs[\(i)]", shape: shape) }
        }
        loans.end()   // before writing: an output may be the memory of an input
        for (i, r) in results.enumerated() { try writeTensor(r, into: outputs! + i, "outputs[\(i)]") }
    }
}

@_cdecl("da_attention_forward_alloc")
public func da_attention_forward_alloc(_ attention: OpaquePointer?, _ args: UnsafePointer<da_forward_args>?,
                                       _ outputs: UnsafeMutablePointer<UnsafeMutablePointer<DLManagedTensor>?>?,
                                       _ capacity: Int32, _ numOutputs: UnsafeMutablePointer<Int32>?) -> da_status {
    guarded {
        let a = try attentionHandles.lookup(attention)
        guard let outputs, let numOutputs else { throw DiffAttnError.argument("outputs and num_outputs must not be NULL") }
        numOutputs.pointee = 0
        var loans = Loans()
        defer { loans.end() }
        let results = try forwardLending(a, args, &loans)
        loans.end()
        guard Int(capacity) >= results.count else {
            throw DiffAttnError.argument("capacity is \(capacity); \(a.processor.kind.name) returns \(results.count) tensor(s)")
        }
        var made: [UnsafeMutablePointer<DLManagedTensor>] = []
        do {
            for r in results { made.append(try makeManaged(r)) }
        } catch {
            made.forEach { release($0) }
            throw error
        }
        for (i, m) in made.enumerated() { outputs[i] = m }
        numOutputs.pointee = Int32(made.count)
    }
}

// MARK: Helper methods

@_cdecl("da_attention_prepare_attention_mask")
public func da_attention_prepare_attention_mask(_ attention: OpaquePointer?, _ mask: UnsafePointer<DLTensor>?,
                                                _ targetLength: Int64, _ batchSize: Int64, _ outDim: Int32,
                                                _ out: UnsafeMutablePointer<UnsafeMutablePointer<DLManagedTensor>?>?) -> da_status {
    guarded {
        try deliver({
            let a = try attentionHandles.lookup(attention)
            guard let m = try readMask(mask, "mask") else { throw DiffAttnError.argument("mask is NULL (None gives None; no call is needed)") }
            guard targetLength >= 0, targetLength <= 1 << 24, batchSize >= 0, batchSize <= 1 << 24 else {
                throw DiffAttnError.argument("target_length and batch_size must be in 0...\(1 << 24), got \(targetLength) and \(batchSize)")
            }
            let prepared = try prepareAttentionMask(m, targetLength: Int(targetLength), batchSize: Int(batchSize),
                                                    heads: a.derived.heads, outDim: Int(outDim))
            return try makeManaged(prepared)
        }, to: out)
    }
}

@_cdecl("da_attention_head_to_batch_dim")
public func da_attention_head_to_batch_dim(_ attention: OpaquePointer?, _ tensor: UnsafePointer<DLTensor>?, _ outDim: Int32,
                                           _ out: UnsafeMutablePointer<UnsafeMutablePointer<DLManagedTensor>?>?) -> da_status {
    guarded {
        try deliver({
            let a = try attentionHandles.lookup(attention)
            return try makeManaged(try a.headToBatchDim(try readTensor(tensor, "tensor"), outDim: Int(outDim))) }, to: out)
    }
}

@_cdecl("da_attention_batch_to_head_dim")
public func da_attention_batch_to_head_dim(_ attention: OpaquePointer?, _ tensor: UnsafePointer<DLTensor>?,
                                           _ out: UnsafeMutablePointer<UnsafeMutablePointer<DLManagedTensor>?>?) -> da_status {
    guarded {
        try deliver({
            let a = try attentionHandles.lookup(attention)
            return try makeManaged(try a.batchToHeadDim(try readTensor(tensor, "tensor"))) }, to: out)
    }
}

@_cdecl("da_attention_get_attention_scores")
public func da_attention_get_attention_scores(_ attention: OpaquePointer?, _ query: UnsafePointer<DLTensor>?,
                                              _ key: UnsafePointer<DLTensor>?, _ mask: UnsafePointer<DLTensor>?,
                                              _ out: UnsafeMutablePointer<UnsafeMutablePointer<DLManagedTensor>?>?) -> da_status {
    guarded {
        try deliver({
            let a = try attentionHandles.lookup(attention)
            let q = try readTensor(query, "query"), k = try readTensor(key, "key")
            return try makeManaged(try a.getAttentionScores(query: q, key: k, mask: try readMask(mask, "attention_mask")))
        }, to: out)
    }
}

@_cdecl("da_attention_norm_encoder_hidden_states")
public func da_attention_norm_encoder_hidden_states(_ attention: OpaquePointer?, _ e: UnsafePointer<DLTensor>?,
                                                    _ out: UnsafeMutablePointer<UnsafeMutablePointer<DLManagedTensor>?>?) -> da_status {
    guarded {
        try deliver({
            let a = try attentionHandles.lookup(attention)
            return try makeManaged(try a.normEncoderHiddenStates(try readTensor(e, "encoder_hidden_states"))) }, to: out)
    }
}

@_cdecl("da_spatial_norm")
public func da_spatial_norm(_ f: UnsafePointer<DLTensor>?, _ zq: UnsafePointer<DLTensor>?,
                            _ weights: UnsafePointer<da_spatial_norm_weights>?,
                            _ out: UnsafeMutablePointer<UnsafeMutablePointer<DLManagedTensor>?>?) -> da_status {
    guarded {
        let weightsValue = try readStruct(weights, "weights")
        let w = weightsValue
        let sw = SpatialNormWeights(
            normWeight: try readTensor(w.norm_layer_weight, "weights->norm_layer_weight"),
            normBias: try readTensor(w.norm_layer_bias, "weights->norm_layer_bias"),
            convYWeight: try readTensor(w.conv_y_weight, "weights->conv_y_weight"),
            convYBias: try readTensor(w.conv_y_bias, "weights->conv_y_bias"),
            convBWeight: try readTensor(w.conv_b_weight, "weights->conv_b_weight"),
            convBBias: try readTensor(w.conv_b_bias, "weights->conv_b_bias"))
        try deliver({ try makeManaged(try spatialNorm(try readTensor(f, "f"), try readTensor(zq, "zq"), sw)) }, to: out)
    }
}
