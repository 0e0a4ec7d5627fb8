//! Cost of the analysis observers on one 512-token forward pass at the default
//! model's shapes (random weights, so no checkpoint is needed): no observer,
//! the residual figures, and the residual figures plus the logit lens.

use candle_core::{DType, Device};
use criterion::{criterion_group, criterion_main, Criterion};
use normscope::analysis::perplexity::evaluate;
use normscope::analysis::{analyze, AnalyzeOptions};
use normscope::model::config::HfConfig;
use normscope::model::{LoadOptions, Model};
use normscope::weights::random::RandomSource;

/// SmolLM2-135M's configuration.
fn smollm2_config() -> normscope::model::Config {
    let raw: HfConfig = serde_json::from_value(serde_json::json!({
        "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
        "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "max_position_embeddings": 8192,
        "tie_word_embeddings": true
    }))
    .unwrap();
    raw.resolve().unwrap()
}

fn bench(c: &mut Criterion) {
    let cfg = smollm2_config();
    let dev = Device::Cpu;
    // Loaded as the CLI loads it (on the CPU: normscope's kernels).
    let mut model = Model::load(
        &RandomSource::new(DType::F32, &dev, true),
        cfg,
        &LoadOptions::inference(DType::F32, &dev),
    )
    .unwrap();
    let window: Vec<u32> = (0..512u32).map(|i| (i * 7919) % 49152).collect();
    let windows = vec![window];
    let mut g = c.benchmark_group("forward_512_tokens");
    g.sample_size(10);
    // The same forward pass and log-likelihood, with no observer attached.
    g.bench_function("no_observer", |b| {
        b.iter(|| evaluate(&model, &windows, 0, &mut || {}).unwrap())
    });
    for (name, lens) in [
        ("residual_figures", false),
        ("residual_figures_and_lens", true),
    ] {
        let opts = AnalyzeOptions {
            lens,
            per_token: false,
            ablate: false,
        };
        g.bench_function(name, |b| {
            b.iter(|| analyze(&mut model, &windows, &opts, &|_| String::new(), &mut || {}).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
