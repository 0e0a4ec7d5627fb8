//! RMSNorm against LayerNorm (the claim: RMSNorm is 10 to 40% faster), f32 on
//! the CPU, at the default model's hidden size (576) and at 4096, for one
//! token (decode) and 512 tokens (prefill). Each norm runs as candle's fused
//! kernel (`candle_nn::ops::{rms_norm, layer_norm}`) and as plain tensor ops
//! (what a training step with a backward pass uses).

use candle_core::{Device, Tensor, D};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const EPS: f64 = 1e-5;

/// `g * x / sqrt(mean(x^2) + eps)` in plain ops.
fn rms_ops(x: &Tensor, g: &Tensor) -> candle_core::Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(ms + EPS)?.sqrt()?)?.broadcast_mul(g)
}

/// `g * (x - mean) / sqrt(var + eps) + b` in plain ops.
fn layer_ops(x: &Tensor, g: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let centered = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    centered
        .broadcast_div(&(var + EPS)?.sqrt()?)?
        .broadcast_mul(g)?
        .broadcast_add(b)
}

fn bench(c: &mut Criterion) {
    let dev = Device::Cpu;
    for hidden in [576usize, 4096] {
        for tokens in [1usize, 512] {
            let x = Tensor::randn(0f32, 1.0, (1, tokens, hidden), &dev).unwrap();
            let g = Tensor::randn(1f32, 0.1, hidden, &dev).unwrap();
            let b = Tensor::randn(0f32, 0.1, hidden, &dev).unwrap();
            let mut group = c.benchmark_group(format!("norm_h{hidden}_t{tokens}"));
            group.sample_size(20);
            group.warm_up_time(std::time::Duration::from_millis(300));
            group.measurement_time(std::time::Duration::from_secs(1));
            group.throughput(Throughput::Elements((tokens * hidden) as u64));
            let eps = EPS as f32;
            group.bench_function(BenchmarkId::new("rms", "fused"), |bch| {
                bch.iter(|| candle_nn::ops::rms_norm(&x, &g, eps).unwrap())
            });
            group.bench_function(BenchmarkId::new("layer", "fused"), |bch| {
                bch.iter(|| candle_nn::ops::layer_norm(&x, &g, &b, eps).unwrap())
            });
            group.bench_function(BenchmarkId::new("rms", "ops"), |bch| {
                bch.iter(|| rms_ops(&x, &g).unwrap())
            });
            group.bench_function(BenchmarkId::new("layer", "ops"), |bch| {
                bch.iter(|| layer_ops(&x, &g, &b).unwrap())
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
