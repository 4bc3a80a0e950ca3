import DiffAttnKernels
import DiffAttnModule

/// How one rotary table pair addresses its rows (see `RotaryTable`).
struct RotaryLayoutSpec {
    var rule: RotaryRule
    var laneOffset = 0
    var width: Int
    var batchStride = 0, rowStride: Int, headStride = 0, laneStride = 1
    /// Offset of the sine table inside `sin`'s storage (1 for interleaved complex tables).
    var sinOffset = 0
    var rowIndex: NDArray<Int>? = nil
    var rowIndexBatchStride = 0
}

// The rotary step: validates the caller's tables against the activations and applies the kernel
// to a token range of a (B, L, H·D) projection in place (embeddings.py:apply_rotary_emb).
extension Attention {
    func rotate(_ t: inout Tensor, heads: Int, headDim: Int, tokens: Range<Int>, cos: Tensor, sin: Tensor,
                _ spec: RotaryLayoutSpec) {
        let (b, l, w) = (t.shape[0], t.shape[1], t.shape[2])
        t.storage.withUnsafeMutableBufferPointer { xp in
            cos.withUnsafeElements { cp in
                sin.withUnsafeElements { sp in
                    withOptionalIndex(spec.rowIndex) { ip in
                        let target = RotaryTarget(data: xp.baseAddress! + tokens.lowerBound * w, batch: b, tokens: tokens.count,
                                                  heads: heads, batchStride: l * w, tokenStride: w, headStride: headDim)
                        let table = RotaryTable(cos: cp.baseAddress!, sin: sp.baseAddress! + spec.sinOffset,
                                                batchStride: spec.batchStride, rowStride: spec.rowStride,
                                                headStride: spec.headStride, laneStride: spec.laneStride,
                                                rowIndex: ip, rowIndexBatchStride: spec.rowIndexBatchStride)
                        applyRotary(target, laneOffset: spec.laneOffset, width: spec.width, rule: spec.rule, table: table)
                    }
                }
            }
        }
    }

    /// Checks a (cos, sin) pair has exactly `shape`.
    func checkRotaryPair(_ r: RotaryPair, _ shape: [Int], _ name: String) throws {
        guard r.cos.shape == shape, r.sin.shape == shape else {
            throw DiffAttnError.shape("\(name) tables must both have shape \(describe(shape)), got cos \(describe(r.cos.shape)) and sin \(describe(r.sin.shape))")
        }
    }

    /// Allegro's three axes (embeddings.py:apply_rotary_emb): chunk sizes ⌈D/3⌉, tables (N_axis, d_axis), positions
    /// (1 or B, L) in range. Returns one layout per axis.
    func allegroLayouts(_ dit: DiTInputs, batch: Int, tokens: Int, headDim: Int) throws -> [RotaryLayoutSpec] {
        guard dit.allegroTables.count == 3, dit.allegroPositions.count == 3 else {
            throw DiffAttnError.shape("image_rotary_emb for Allegro must be ((cos_t, sin_t), (cos_h, sin_h), (cos_w, sin_w)) and three position tensors")
        }
        let chunk = (headDim + 2) / 3
        var layouts: [RotaryLayoutSpec] = [], offset = 0
        for axis in 0..<3 {
            let width = min(chunk, headDim - offset)
            let table = dit.allegroTables[axis], pos = dit.allegroPositions[axis]
            guard width > 0, width % 2 == 0, table.cos.rank == 2, table.cos.shape[1] == width else {
                throw DiffAttnError.shape("Allegro rotary table \(axis) must be (positions, \(width)) for head_dim \(headDim), got \(describe(table.cos.shape))")
            }
            try checkRotaryPair(table, table.cos.shape, "Allegro axis \(axis)")
            guard pos.rank == 2, pos.shape[0] == 1 || pos.shape[0] == batch, pos.shape[1] == tokens else {
                throw DiffAttnError.shape("Allegro positions \(axis) must be (1 or \(batch), \(tokens)), got \(describe(pos.shape))")
            }
            guard pos.storage.allSatisfy({ $0 >= 0 && $0 < table.cos.shape[0] }) else {
                throw DiffAttnError.shape("index out of range in self: Allegro positions \(axis) must lie in 0..<\(table.cos.shape[0])")
            }
            layouts.append(RotaryLayoutSpec(rule: .rotateHalf, laneOffset: offset, width: width, rowStride: width,
                                            rowIndex: pos, rowIndexBatchStride: pos.shape[0] == 1 ? 0 : tokens))
            offset += width
        }
        return layouts
    }

    /// Lumina's complex tables (P, L, D/2) stored as (P, L, D/2, 2).
    func luminaLayout(_ f: Tensor, batch: Int, tokens: Int, headDim: Int, _ name: String) throws -> RotaryLayoutSpec {
        guard f.rank == 4, f.shape[0] == 1 || f.shape[0] == batch, f.shape[1] == tokens, f.shape[2] * 2 == headDim,
              f.shape[3] == 2 else {
            throw DiffAttnError.shape("\(name) must be complex (1 or \(batch), \(tokens), \(headDim / 2)) (as float32 (…, 2)), got \(describe(f.shape))")
        }
        return RotaryLayoutSpec(rule: .pairAngles, width: headDim, batchStride: f.shape[0] == 1 ? 0 : tokens * headDim,
                                rowStride: headDim, laneStride: 2, sinOffset: 1)
    }
}

private func withOptionalIndex<R>(_ t: NDArray<Int>?, _ body: (UnsafePointer<Int>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.withUnsafeElements { body($0.baseAddress) }
}
