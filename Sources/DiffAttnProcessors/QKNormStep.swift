import DiffAttnKernels
import DiffAttnModule

// `norm_q` / `norm_k` as the SDPA processors apply them: after the head split, over each head's
// D values (attention_processor.py:Attention.__init__ (qk_norm)). Norms sized for another width fail as torch's would (the across-heads
// kinds, or D ≠ dim_head), except the weightless RMS and L2 norms, which check no size.
extension Attention {
    func checkQKNorm(headDim d: Int) throws {
        guard let (qWidth, kWidth, weighted, _) = Attention.qkNormWidths(config) else { return }
        switch config.qkNorm {
        case .l2: return
        case .rmsNorm where !weighted: return
        default:
            for (width, name) in [(qWidth, "norm_q"), (kWidth, "norm_k")] where width != d {
                throw DiffAttnError.shape("\(name) (\(config.qkNorm.diffusersName)) normalises \(width) values but is applied per head to \(d) values (head_dim)")
            }
        }
    }

    /// Normalises each head's `d` values of a (B, N, heads·d) projection in place.
    func applyQKNorm(_ x: inout Tensor, _ prefix: String, headDim d: Int) {
        let rows = x.count / d
        let eps = Float(config.eps)
        let w = weight(prefix + ".weight"), b = weight(prefix + ".bias")
        x.storage.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            withOptionalPointer(w) { wp in
                withOptionalPointer(b) { bp in
                    switch config.qkNorm {
                    case .layerNorm, .fp32LayerNorm, .layerNormAcrossHeads:
                        layerNormRows(base, base, rows: rows, width: d, eps: eps, weight: wp, bias: bp)
                    case .rmsNorm, .rmsNormAcrossHeads:
                        rmsNormRows(base, base, rows: rows, width: d, eps: eps, weight: wp)
                    case .l2:
                        l2NormRows(base, base, rows: rows, width: d, eps: eps)
                    case .none: break
                    }
                }
            }
        }
    }
}

/// Runs `body` with the tensor's base address, or nil when there is no tensor.
func withOptionalPointer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.withUnsafeElements { body($0.baseAddress) }
}
