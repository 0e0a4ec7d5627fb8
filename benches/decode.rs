//! One decode step (one token through the KV cache) and one 128-token prefill
//! of the default model's architecture (SmolLM2-135M shapes, random weights,
//! so no checkpoint is needed), with f32 weights and quantized in situ to
//! Q8_0 and Q4_1 (the default GGUF's format), on the CPU kernels the loaders use.

use std::time::{Duration, Instant};

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use normscope::model::config::HfConfig;
use normscope::model::{KvState, LoadOptions, Model};
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

/// Decode steps start over from a fresh cache after this many positions, so
/// the attention span stays short and alike across samples.
const MAX_POS: usize = 256;

/// A cache holding one token.
fn primed(model: &Model, dev: &Device) -> KvState {
    let mut cache = model.new_cache();
    model
        .forward_last(&Tensor::new(&[[1u32]], dev).unwrap(), Some(&mut cache))
        .unwrap();
    cache
}

fn bench(c: &mut Criterion) {
    let dev = Device::Cpu;
    let prompt: Vec<u32> = (0..128u32).map(|i| (i * 7919 + 13) % 49152).collect();
    let prompt = Tensor::new(prompt.as_slice(), &dev)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let step = Tensor::new(&[[42u32]], &dev).unwrap();
    for (name, quant) in [
        ("f32", None),
        ("q8_0", Some(GgmlDType::Q8_0)),
        ("q4_1", Some(GgmlDType::Q4_1)),
    ] {
        // Loaded as the CLI loads it: quantized in situ, then on the CPU kernels.
        let opts = LoadOptions {
            quantize: quant,
            ..LoadOptions::inference(DType::F32, &dev)
        };
        let src = RandomSource::new(DType::F32, &dev, true);
        let model = Model::load(&src, smollm2_config(), &opts).unwrap();
        let mut group = c.benchmark_group(format!("smollm2_{name}"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
        group.bench_function("decode_step", |b| {
            b.iter_custom(|iters| {
                let mut cache = primed(&model, &dev);
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    if cache.len() >= MAX_POS {
                        cache = primed(&model, &dev);
                    }
                    let t0 = Instant::now();
                    model.forward_last(&step, Some(&mut cache)).unwrap();
                    spent += t0.elapsed();
                }
                spent
            })
        });
        if name != "q8_0" {
            group.bench_function("prefill_128", |b| {
                b.iter_batched(
                    || model.new_cache(),
                    |mut cache| model.forward_last(&prompt, Some(&mut cache)).unwrap(),
                    BatchSize::PerIteration,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
