//! Property tests: sampling never leaves the top-k / top-p set and is
//! reproducible from its seed; KV-cache decoding equals the full forward pass
//! on random tiny configurations.

use candle_core::{Device, IndexOp, Tensor};
use normscope::generate::SamplingConfig;
use proptest::prelude::*;

use crate::common::{load, max_abs_diff, Tiny};

/// Distinct logits (ties would make "the top k" ambiguous).
fn logits() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-1000i32..1000, 2..48).prop_map(|raw| {
        raw.iter()
            .enumerate()
            .map(|(i, &r)| r as f32 / 100.0 + i as f32 * 1e-4)
            .collect()
    })
}

/// Token ids from most to least likely, and their probabilities at `temperature`.
fn ranked(logits: &[f32], temperature: f64) -> (Vec<usize>, Vec<f64>) {
    let max = logits.iter().cloned().fold(f32::MIN, f32::max) as f64;
    let w: Vec<f64> = logits
        .iter()
        .map(|&l| ((l as f64 - max) / temperature).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    (order, w.iter().map(|x| x / sum).collect())
}

fn draws(cfg: &SamplingConfig, logits: &[f32], n: usize) -> Vec<u32> {
    let t = Tensor::new(logits, &Device::Cpu).unwrap();
    let mut p = cfg.processor();
    (0..n).map(|_| p.sample(&t).unwrap()).collect()
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sampling_stays_inside_top_k_and_top_p(
        logits in logits(),
        temperature in 0.05f64..3.0,
        k_frac in 0.0f64..1.0,
        top_p in 0.05f64..1.0,
        use_k in any::<bool>(),
        use_p in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let n = logits.len();
        let k = 1 + (k_frac * (n - 1) as f64) as usize;
        let cfg = SamplingConfig {
            temperature,
            top_k: use_k.then_some(k),
            top_p: use_p.then_some(top_p),
            seed,
            ..SamplingConfig::default()
        };
        cfg.validate().unwrap();
        let (order, probs) = ranked(&logits, temperature);
        for tok in draws(&cfg, &logits, 16) {
            let rank = order.iter().position(|&i| i == tok as usize).unwrap();
            if use_k {
                prop_assert!(rank < k, "token of rank {} with top-k {}", rank, k);
            }
            if use_p && !use_k {
                let before: f64 = order[..rank].iter().map(|&i| probs[i]).sum();
                prop_assert!(before < top_p + 1e-4, "token of rank {} has {} mass above it, top-p {}", rank, before, top_p);
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_tokens(logits in logits(), seed in any::<u64>(), temperature in 0.1f64..2.0) {
        let cfg = SamplingConfig { temperature, top_p: Some(0.95), seed, ..SamplingConfig::default() };
        prop_assert_eq!(draws(&cfg, &logits, 12), draws(&cfg, &logits, 12));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn kv_cache_decoding_equals_the_full_forward_pass(
        heads_log in 0u32..3,
        kv_div_log in 0u32..3,
        head_dim in prop::sample::select(vec![4usize, 8]),
        layers in 1usize..3,
        ffn in prop::sample::select(vec![8usize, 24]),
        tied in any::<bool>(),
        seed in 1u64..1000,
        ids in prop::collection::vec(0u32..300, 2..8),
    ) {
        let heads = 1 << heads_log;
        let kv_heads = heads >> kv_div_log.min(heads_log);
        let tiny = Tiny { hidden: heads * head_dim, ffn, layers, heads, kv_heads, vocab: 300, tied, seed };
        let dir = tempfile::tempdir().unwrap();
        let lm = load(&tiny.write_folder(dir.path()));
        let input = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let full = lm.model.forward_all(&input, None).unwrap();
        let mut cache = lm.model.new_cache();
        for (t, id) in ids.iter().enumerate() {
            let step = Tensor::new(&[*id], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            let got = lm.model.forward_last(&step, Some(&mut cache)).unwrap();
            let want = full.i((.., t, ..)).unwrap();
            let diff = max_abs_diff(&got, &want);
            prop_assert!(diff < 1e-4, "position {}: max diff {}", t, diff);
        }
    }
}
