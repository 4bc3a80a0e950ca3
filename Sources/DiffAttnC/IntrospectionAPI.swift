import CDiffAttnHeader
import DiffAttn

// What bindings ask the library instead of keeping copies: the processor classes and their
// families, and the size of every struct the header declares (to check their mirrors at load).

private let structSizes: [String: Int] = [
    "DLDevice": MemoryLayout<DLDevice>.stride, "DLDataType": MemoryLayout<DLDataType>.stride,
    "DLTensor": MemoryLayout<DLTensor>.stride, "DLManagedTensor": MemoryLayout<DLManagedTensor>.stride,
    "da_processor_config": MemoryLayout<da_processor_config>.stride,
    "da_attention_config": MemoryLayout<da_attention_config>.stride,
    "da_attention_info": MemoryLayout<da_attention_info>.stride,
    "da_weight_info": MemoryLayout<da_weight_info>.stride,
    "da_forward_args": MemoryLayout<da_forward_args>.stride,
    "da_dit_args": MemoryLayout<da_dit_args>.stride,
    "da_output_shapes": MemoryLayout<da_output_shapes>.stride,
    "da_spatial_norm_weights": MemoryLayout<da_spatial_norm_weights>.stride,
    "da_sdpa_options": MemoryLayout<da_sdpa_options>.stride,
    "da_load_report": MemoryLayout<da_load_report>.stride,
    "da_hook_callbacks": MemoryLayout<da_hook_callbacks>.stride,
    "da_group_offload_config": MemoryLayout<da_group_offload_config>.stride,
    "da_group_offload_stats": MemoryLayout<da_group_offload_stats>.stride,
    "da_pab_config": MemoryLayout<da_pab_config>.stride,
    "da_block_io": MemoryLayout<da_block_io>.stride,
    "da_first_block_cache_config": MemoryLayout<da_first_block_cache_config>.stride,
    "da_faster_cache_config": MemoryLayout<da_faster_cache_config>.stride,
    "da_taylorseer_cache_config": MemoryLayout<da_taylorseer_cache_config>.stride,
    "da_mag_cache_config": MemoryLayout<da_mag_cache_config>.stride,
    "da_teacache_config": MemoryLayout<da_teacache_config>.stride,
    "da_layer_skip_config": MemoryLayout<da_layer_skip_config>.stride,
    "da_cache_context": MemoryLayout<da_cache_context>.stride,
    "da_sea_cache_config": MemoryLayout<da_sea_cache_config>.stride,
    "da_smoothed_energy_guidance_config": MemoryLayout<da_smoothed_energy_guidance_config>.stride,
    "da_text_kv_cache_config": MemoryLayout<da_text_kv_cache_config>.stride,
]

@_cdecl("da_struct_size")
public func da_struct_size(_ name: UnsafePointer<CChar>?) -> Int {
    guard let name else { return 0 }
    return structSizes[String(cString: name)] ?? 0
}

@_cdecl("da_processor_kind_count")
public func da_processor_kind_count() -> Int64 { Int64(ProcessorKind.allCases.count) }

@_cdecl("da_processor_kind_at")
public func da_processor_kind_at(_ index: Int64, _ kind: UnsafeMutablePointer<Int32>?) -> da_status {
    guarded {
        guard let kind else { throw DiffAttnError.argument("kind must not be NULL") }
        let all = ProcessorKind.allCases
        guard index >= 0, index < Int64(all.count) else {
            throw DiffAttnError.argument("index must be in 0..<\(all.count), got \(index)")
        }
        kind.pointee = all[Int(index)].rawValue
    }
}

@_cdecl("da_processor_family")
public func da_processor_family(_ kind: Int32, _ family: UnsafeMutablePointer<Int32>?) -> da_status {
    guarded {
        guard let family else { throw DiffAttnError.argument("family must not be NULL") }
        guard let k = ProcessorKind(rawValue: kind), let f = k.classFamily else {
            throw DiffAttnError(.notFound, "kind: no processor family for \(kind)")
        }
        switch f {
        case .standard: family.pointee = DA_PROCESSOR_FAMILY_STANDARD
        case .addedKV: family.pointee = DA_PROCESSOR_FAMILY_ADDED_KV
        case .customDiffusion: family.pointee = DA_PROCESSOR_FAMILY_CUSTOM_DIFFUSION
        case .ipAdapter: family.pointee = DA_PROCESSOR_FAMILY_IP_ADAPTER
        case .deprecatedLoRA: family.pointee = DA_PROCESSOR_FAMILY_DEPRECATED_LORA
        case .dit: family.pointee = DA_PROCESSOR_FAMILY_DIT
        case .ditSD3IPAdapter: family.pointee = DA_PROCESSOR_FAMILY_DIT_SD3_IP_ADAPTER
        case .ditFluxIPAdapter: family.pointee = DA_PROCESSOR_FAMILY_DIT_FLUX_IP_ADAPTER
        }
    }
}
