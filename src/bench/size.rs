//! What a model holds: its size in bytes (weights as stored in memory), its
//! parameter count, the weight bytes one decode step reads, and a label for
//! the storage format of its linear maps.

use std::collections::BTreeMap;

use crate::model::layout::{self, Kind};
use crate::model::Model;

/// Size figures of a loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelStats {
    /// Bytes of all weights as held (a tied head that shares the embedding counts once).
    pub size_bytes: u64,
    /// Parameters (a tied head counts once).
    pub n_params: u64,
    /// Weight bytes one decode step reads: every linear map and the LM head.
    pub bytes_per_token: u64,
    /// Storage formats of the linear maps, most frequent first: `Q4_1`, `F32`, `Q5_0+Q4_K`.
    pub format: String,
}

/// Size, parameter count and format label of `model`. A tied head's
/// parameters are the embedding's ([`Model::head_is_tied`]); its bytes count
/// once when it shares the embedding's storage ([`Model::head_shares_embedding`]).
/// A checkpoint that ships its own `lm_head.weight` counts it, whatever its
/// configuration says about tying.
pub fn model_stats(model: &Model) -> ModelStats {
    let cfg = &model.cfg;
    let norms = layout::tensors(cfg)
        .into_iter()
        .filter(|t| t.kind == Kind::Norm);
    let norm_elems: u64 = norms
        .map(|t| t.shape.iter().product::<usize>() as u64)
        .sum();
    let mut linear_bytes = 0u64;
    let mut linear_params = 0u64;
    let mut labels: BTreeMap<String, usize> = BTreeMap::new();
    for (_, lin) in model.linears() {
        let (rows, cols) = lin.dims().unwrap_or((0, 0));
        let elems = (rows * cols) as u64;
        linear_bytes += lin.weight_bytes() as u64;
        linear_params += elems;
        *labels.entry(lin.format_name()).or_default() += 1;
    }
    let (rows, cols) = model.lm_head.dims().unwrap_or((0, 0));
    let head_elems = if model.head_is_tied() {
        (rows * cols) as u64
    } else {
        0
    };
    let head_bytes = if model.head_shares_embedding() {
        model.lm_head.weight_bytes() as u64
    } else {
        0
    };
    let mut by_count: Vec<(String, usize)> = labels.into_iter().collect();
    by_count.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let embed_bytes = model.embed.storage_bytes() as u64;
    let (vocab, hidden) = model.embed.dims().unwrap_or((0, 0));
    ModelStats {
        size_bytes: embed_bytes + norm_elems * model.dtype().size_in_bytes() as u64 + linear_bytes
            - head_bytes,
        n_params: (vocab * hidden) as u64 + norm_elems + linear_params - head_elems,
        bytes_per_token: linear_bytes,
        format: by_count
            .into_iter()
            .map(|(l, _)| l)
            .collect::<Vec<_>>()
            .join("+"),
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::GgmlDType;
    use candle_core::{DType, Device};

    use super::*;
    use crate::model::config::HfConfig;
    use crate::model::LoadOptions;
    use crate::weights::random::RandomSource;

    /// A tiny random model; `kernels`: prepared for CPU inference as the loaders do.
    fn tiny_with(tied: bool, kernels: bool) -> Model {
        let raw: HfConfig = serde_json::from_value(serde_json::json!({
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
            "tie_word_embeddings": tied
        }))
        .unwrap();
        let src = RandomSource::new(DType::F32, &Device::Cpu, tied);
        let opts = LoadOptions {
            training: !kernels,
            ..LoadOptions::inference(DType::F32, &Device::Cpu)
        };
        Model::load(&src, raw.resolve().unwrap(), &opts).unwrap()
    }

    fn tiny(tied: bool) -> Model {
        tiny_with(tied, false)
    }

    #[test]
    fn counts_tied_heads_once_and_quantized_bytes_as_stored() {
        // per block: q 64x64, k 32x64, v 32x64, o 64x64, gate/up 128x64, down 64x128
        let block = 64 * 64 * 2 + 32 * 64 * 2 + 128 * 64 * 3;
        let (embed, norms) = (100 * 64, 64 * 5);
        let s = model_stats(&tiny(true));
        assert_eq!(s.n_params, (embed + norms + 2 * block) as u64);
        assert_eq!(s.size_bytes, 4 * s.n_params);
        assert_eq!(s.bytes_per_token, 4 * (2 * block + embed) as u64);
        assert_eq!(s.format, "F32");
        let untied = model_stats(&tiny(false));
        assert_eq!(untied.n_params, s.n_params + embed as u64);
        // A tied configuration whose checkpoint still ships lm_head.weight:
        // the head is loaded from its own tensor and counts.
        let shipped = Model::load(
            &RandomSource::new(DType::F32, &Device::Cpu, false),
            tiny(true).cfg,
            &LoadOptions {
                training: true,
                ..LoadOptions::inference(DType::F32, &Device::Cpu)
            },
        )
        .unwrap();
        assert!(shipped.cfg.tie_word_embeddings);
        assert_eq!(model_stats(&shipped).n_params, untied.n_params);

        let mut m = tiny(true);
        assert_eq!(m.quantize_in_situ(GgmlDType::Q8_0).unwrap(), 15);
        let q = model_stats(&m);
        assert_eq!(q.n_params, s.n_params);
        // Q8_0: 34 bytes per 32 values; the dense embedding stays beside the quantized head.
        assert_eq!(q.bytes_per_token, (2 * block + embed) as u64 * 34 / 32);
        assert_eq!(q.size_bytes, 4 * (embed + norms) as u64 + q.bytes_per_token);
        assert_eq!(q.format, "Q8_0");
        // The same figures once the maps run on our CPU kernels, except that
        // they hold weights in groups of 8 rows: the head's 100 rows take 104.
        let pad = |bytes_per_row: u64| 4 * bytes_per_row;
        let src = RandomSource::new(DType::F32, &Device::Cpu, true);
        let cfg = tiny(true).cfg;
        let opts = LoadOptions {
            quantize: Some(GgmlDType::Q8_0),
            ..LoadOptions::inference(DType::F32, &Device::Cpu)
        };
        let qk = model_stats(&Model::load(&src, cfg, &opts).unwrap());
        assert_eq!((qk.n_params, qk.format.as_str()), (q.n_params, "Q8_0"));
        assert_eq!(qk.bytes_per_token, q.bytes_per_token + pad(64 * 34 / 32));
        assert_eq!(qk.size_bytes, q.size_bytes + pad(64 * 34 / 32));
        // f32 on the kernels: the tied embedding is the packed head itself.
        let sk = model_stats(&tiny_with(true, true));
        assert_eq!((sk.n_params, sk.format.as_str()), (s.n_params, "F32"));
        assert_eq!(sk.bytes_per_token, s.bytes_per_token + pad(64 * 4));
        assert_eq!(sk.size_bytes, s.size_bytes + pad(64 * 4));
        let mut k = tiny(true);
        k.quantize_in_situ(GgmlDType::Q4K).unwrap();
        assert_eq!(model_stats(&k).format, "Q5_0"); // 64 and 128 columns: no 256-value blocks
    }
}
