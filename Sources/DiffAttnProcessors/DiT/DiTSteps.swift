import DiffAttnKernels
import DiffAttnModule

// Steps the DiT pipelines compose: token/batch slicing and joining, fused or separate
// projections, per-stream qk-norms, the identity path of PAG, and the chunk rule of torch.
extension Attention {
    /// `[to_q | to_k | to_v](x)` from the separate layers or split from a fused layer's output in
    /// equal parts (attention_processor.py:Attention.fuse_projections; only right without GQA).
    func projectParts(_ x: Tensor, fused: Bool, separate: [String], fusedName: String) throws -> [Tensor] {
        guard fused else { return try separate.map { try project(x, $0) } }
        guard parameters.contains(fusedName + ".weight") else {
            throw DiffAttnError.state("'\(config.moduleClass.name)' object has no attribute '\(fusedName)' (call fuse_projections first)")
        }
        return splitLastAxis(try project(x, fusedName), parts: separate.count)
    }

    func hasLayer(_ prefix: String) -> Bool { parameters.contains(prefix + ".weight") }

    /// Whether norm `prefix` exists on this module (weightless norms have no state-dict entry).
    func hasNorm(_ prefix: String) -> Bool {
        if config.qkNorm == .none { return false }
        switch prefix {
        case "norm_q", "norm_k": return true
        case "norm_added_q":
            return config.addedKVProjDim != nil && config.qkNorm != .rmsNormAcrossHeads
        default: return config.addedKVProjDim != nil
        }
    }

    /// Applies the named per-head norm when the module has it, after checking its width.
    func normHeads(_ t: inout Tensor, _ prefix: String, headDim: Int) throws {
        guard hasNorm(prefix) else { return }
        if let w = parameters.spec(named: prefix + ".weight"), w.shape[0] != headDim {
            throw DiffAttnError.shape("\(prefix) normalises \(w.shape[0]) values but is applied per head to \(headDim) values (head_dim)")
        }
        applyQKNorm(&t, prefix, headDim: headDim)
    }

    /// PAG's identity attention: `to_out(to_v(x))` (attention_processor.py:PAGIdentitySelfAttnProcessor2_0.__call__).
    func identityAttention(_ x: Tensor) throws -> Tensor { try project(try project(x, "to_v"), "to_out.0") }
}

/// `torch.chunk(x, n)` along the batch unpacked into `n` parts: the slice boundaries, or the
/// ValueError Python's unpacking raises when fewer parts come out (torch.chunk).
func pagChunkRanges(batch: Int, chunks n: Int) throws -> (original: Range<Int>, perturbed: Range<Int>) {
    let size = (batch + n - 1) / n
    let produced = size == 0 ? 0 : (batch + size - 1) / size
    guard produced == n else {
        throw DiffAttnError.value("not enough values to unpack (expected \(n), got \(produced)): the batch of \(batch) does not split into \(n) PAG chunks")
    }
    return (0..<(size * (n - 1)), (size * (n - 1))..<batch)
}

/// Joins (B, L_i, W) tensors along the token axis.
func concatTokens(_ parts: [Tensor]) -> Tensor {
    let b = parts[0].shape[0], w = parts[0].shape[2]
    var out = [Float](); out.reserveCapacity(parts.reduce(0) { $0 + $1.count })
    for bi in 0..<b {
        for p in parts {
            let n = p.shape[1]
            out.append(contentsOf: p.storage[(bi * n * w)..<((bi + 1) * n * w)])
        }
    }
    return Tensor(shape: [b, parts.reduce(0) { $0 + $1.shape[1] }, w], storage: out)
}

/// Tokens `range` of a (B, L, W) tensor.
func sliceTokens(_ y: Tensor, _ range: Range<Int>) -> Tensor {
    let (b, n, w) = (y.shape[0], y.shape[1], y.shape[2])
    var out = [Float](); out.reserveCapacity(b * range.count * w)
    for bi in 0..<b { out.append(contentsOf: y.storage[((bi * n + range.lowerBound) * w)..<((bi * n + range.upperBound) * w)]) }
    return Tensor(shape: [b, range.count, w], storage: out)
}

/// Batch entries `range` of any tensor.
func sliceBatch<E>(_ y: NDArray<E>, _ range: Range<Int>) -> NDArray<E> {
    let per = y.count / max(y.shape[0], 1)
    var shape = y.shape; shape[0] = range.count
    return NDArray(shape: shape, storage: Array(y.storage[(range.lowerBound * per)..<(range.upperBound * per)]))
}

/// Joins tensors along the batch axis.
func concatBatch(_ parts: [Tensor]) -> Tensor {
    var shape = parts[0].shape; shape[0] = parts.reduce(0) { $0 + $1.shape[0] }
    return Tensor(shape: shape, storage: parts.flatMap(\.storage))
}
