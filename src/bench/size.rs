//! What a model holds: its size in bytes (weights as stored in memory), its
//! parameter count, the weight bytes one decode step reads, and a label for
//! the storage format of its linear maps.

use std::collections::BTreeMap;

use candle_core::quantized::QMatMul;
use candle_core::DType;

use crate::model::linear::Linear;
use crate::model::Llama;

/// Size figures of a loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelStats {
    /// Bytes of all weights as held (a tied head that shares the embedding counts once).
    pub size_bytes: u64,
    /// Parameters (a tied head counts once).
    pub n_params: u64,
    /// Weight bytes one decode step reads: every linear map and the LM head.
    pub bytes_per_token: u64,
    /// Storage formats of the linear maps, most frequent first: `Q4_1`, `F32`, `Q5_0+Q4K`.
    pub format: String,
}

/// Size, parameter count and format label of `model`.
pub fn model_stats(model: &Llama) -> ModelStats {
    let cfg = &model.cfg;
    let (h, f) = (cfg.hidden_size, cfg.intermediate_size);
    let (q, kv) = (
        cfg.num_heads * cfg.head_dim,
        cfg.num_kv_heads * cfg.head_dim,
    );
    let norm_elems = (h * (2 * cfg.num_layers + 1)) as u64;
    let mut linear_bytes = 0u64;
    let mut linear_params = 0u64;
    let mut labels: BTreeMap<String, usize> = BTreeMap::new();
    let mut visit = |lin: &Linear, rows: usize, cols: usize| {
        let elems = (rows * cols) as u64;
        linear_bytes += lin.weight_bytes() as u64;
        linear_params += elems;
        *labels.entry(storage_label(lin, elems)).or_default() += 1;
    };
    for b in &model.blocks {
        let (a, m) = (&b.attn, &b.mlp);
        for (lin, rows, cols) in [(&a.q, q, h), (&a.k, kv, h), (&a.v, kv, h), (&a.o, h, q)] {
            visit(lin, rows, cols);
        }
        for (lin, rows, cols) in [(&m.gate, f, h), (&m.up, f, h), (&m.down, h, f)] {
            visit(lin, rows, cols);
        }
    }
    visit(&model.lm_head, cfg.vocab_size, h);
    let head_elems = (cfg.vocab_size * h) as u64;
    let head_is_embed = model.embed.is_tied_to(&model.lm_head);
    let mut by_count: Vec<(String, usize)> = labels.into_iter().collect();
    by_count.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let embed_bytes = model.embed.storage_bytes() as u64;
    ModelStats {
        size_bytes: embed_bytes + norm_elems * model.dtype().size_in_bytes() as u64 + linear_bytes
            - if head_is_embed {
                model.lm_head.weight_bytes() as u64
            } else {
                0
            },
        n_params: (cfg.vocab_size * cfg.hidden_size) as u64 + norm_elems + linear_params
            - if cfg.tie_word_embeddings {
                head_elems
            } else {
                0
            },
        bytes_per_token: linear_bytes,
        format: by_count
            .into_iter()
            .map(|(l, _)| l)
            .collect::<Vec<_>>()
            .join("+"),
    }
}

/// The storage format of a linear map of `elems` values: `F32`, `Q4_1`, ...
fn storage_label(lin: &Linear, elems: u64) -> String {
    let dtype = |d: DType| format!("{d:?}").to_uppercase();
    match lin {
        Linear::Dense(l) => dtype(l.weight().dtype()),
        Linear::Quantized(QMatMul::QTensor(q)) => format!("{:?}", q.dtype()),
        Linear::Quantized(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => dtype(t.dtype()),
        // Layouts of our own kernels, told apart by their bytes per 32 values.
        other => match other.weight_bytes() as u64 * 32 / elems.max(1) {
            128 => "F32",
            64 => "F16",
            34 => "Q8_0",
            20 => "Q4_1",
            _ => "other",
        }
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::GgmlDType;
    use candle_core::{DType, Device};

    use super::*;
    use crate::model::config::HfConfig;
    use crate::model::quantize::quantize_in_situ;
    use crate::weights::random::RandomSource;

    fn tiny(tied: bool) -> Llama {
        let raw: HfConfig = serde_json::from_value(serde_json::json!({
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
            "tie_word_embeddings": tied
        }))
        .unwrap();
        let src = RandomSource::new(DType::F32, &Device::Cpu, tied);
        Llama::load(&src, raw.resolve().unwrap(), DType::F32, &Device::Cpu).unwrap()
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

        let mut m = tiny(true);
        assert_eq!(quantize_in_situ(&mut m, GgmlDType::Q8_0).unwrap(), 15);
        let q = model_stats(&m);
        assert_eq!(q.n_params, s.n_params);
        // Q8_0: 34 bytes per 32 values; the dense embedding stays beside the quantized head.
        assert_eq!(q.bytes_per_token, (2 * block + embed) as u64 * 34 / 32);
        assert_eq!(q.size_bytes, 4 * (embed + norms) as u64 + q.bytes_per_token);
        assert_eq!(q.format, "Q8_0");
        // The same figures once the maps run on our CPU kernels.
        m.use_cpu_kernels().unwrap();
        assert_eq!(model_stats(&m), q);
        let mut d = tiny(true);
        d.use_cpu_kernels().unwrap();
        assert_eq!(model_stats(&d), s);
        let mut k = tiny(true);
        quantize_in_situ(&mut k, GgmlDType::Q4K).unwrap();
        assert_eq!(model_stats(&k).format, "Q5_0"); // 64 and 128 columns: no 256-value blocks
    }
}
