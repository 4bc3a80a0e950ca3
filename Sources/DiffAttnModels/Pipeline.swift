import DiffAttnModule
import DiffAttnProcessors

/// A diffusers pipeline reduced to what attention management needs: named models (`unet` or
/// `transformer`, `vae`, ...) and the pipeline-level switches of `DiffusionPipeline` /
/// `StableDiffusionMixin` (pipelines/pipeline_utils.py:StableDiffusionMixin.fuse_qkv_projections, models/modeling_utils.py:ModelMixin.set_use_memory_efficient_attention_xformers, unets/unet_2d_condition.py:UNet2DConditionModel.set_attention_slice).
public final class Pipeline: @unchecked Sendable {
    public private(set) var components: [(String, Model)] = []
    /// `fusing_unet` / `fusing_vae`; nil until the first fuse (diffusers: attributes not yet set).
    private var fusing: (unet: Bool, vae: Bool)?

    public init() {}

    public func add(_ name: String, _ model: Model) throws {
        guard !name.isEmpty, !components.contains(where: { $0.0 == name }) else {
            throw DiffAttnError.value("component name '\(name)' is empty or already used")
        }
        components.append((name, model))
    }

    public func component(_ name: String) -> Model? { components.first { $0.0 == name }?.1 }

    private func require(_ name: String) throws -> Model {
        guard let m = component(name) else { throw DiffAttnError.state("'Pipeline' object has no attribute '\(name)'") }
        return m
    }

    /// `fuse_qkv_projections(unet=True, vae=True)`: the UNet is fused before the VAE is checked.
    public func fuseQKVProjections(unet: Bool, vae: Bool) throws {
        fusing = (false, false)
        if unet {
            let m = try require("unet")
            fusing!.unet = true
            try m.fuseQKVProjections()
        }
        if vae {
            let m = try require("vae")
            guard m.modelClass == .autoencoderKL else {
                throw DiffAttnError.value("`fuse_qkv_projections()` is only supported for the VAE of type `AutoencoderKL`.")
            }
            fusing!.vae = true
            try m.fuseQKVProjections()
        }
    }

    /// `unfuse_qkv_projections(unet=True, vae=True)`; a component that was not fused is left alone
    /// (diffusers logs "... was not initially fused ..."). Before any fuse: diffusers' attribute error.
    public func unfuseQKVProjections(unet: Bool, vae: Bool) throws {
        guard let flags = fusing else { throw DiffAttnError.state("'Pipeline' object has no attribute 'fusing_unet'") }
        if unet && flags.unet { try require("unet").unfuseQKVProjections(); fusing!.unet = false }
        if vae && flags.vae { try require("vae").unfuseQKVProjections(); fusing!.vae = false }
    }

    /// `enable_attention_slicing(slice_size)` / `disable_attention_slicing()` (`.none`): every
    /// component that has `set_attention_slice`; the others are skipped silently.
    public func setAttentionSlicing(_ request: SliceRequest) throws {
        for (_, m) in components where m.modelClass.hasAttentionSlice { try m.setAttentionSlice(request) }
    }

    /// `enable_/disable_xformers_memory_efficient_attention()` over every component.
    public func setUseMemoryEfficientAttentionXformers(_ valid: Bool) throws {
        for (_, m) in components { try m.setUseMemoryEfficientAttentionXformers(valid) }
    }
}
