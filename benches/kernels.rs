//! Matrix-product kernels per weight format: decode (one activation row,
//! reported as weight bytes streamed per second) and prefill (64 rows,
//! reported as multiply-adds per second), at SmolLM2's FFN shape
//! (1536 x 576, down 576 x 1536 for the k-quants) and the tied head
//! (49152 x 576), whose weights stay in cache between iterations, and at
//! Llama-3.2-1B's FFN shapes (up 8192 x 2048, down 2048 x 8192), whose
//! decode case cycles through copies of the matrix totalling at least
//! 256 MiB, so that every iteration streams its weights from DRAM as a
//! 1B model's decode does. Weights are random ggml blocks with sane f16
//! scales.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use normscope::kernels::{PackedMatrix, WeightFormat};
use normscope::rng::SplitMix64;

/// A random `rows x cols` matrix in `format`.
fn matrix(format: WeightFormat, rows: usize, cols: usize, seed: u64) -> PackedMatrix {
    let mut rng = SplitMix64::new(seed);
    let mut bytes: Vec<u8> = (0..format.row_bytes(cols).unwrap() * rows)
        .map(|_| rng.next_u64() as u8)
        .collect();
    let small = half::f16::from_f32(0.01).to_le_bytes();
    match format {
        WeightFormat::F32 => bytes
            .chunks_mut(4)
            .for_each(|v| v.copy_from_slice(&0.01f32.to_le_bytes())),
        WeightFormat::F16 => bytes.chunks_mut(2).for_each(|v| v.copy_from_slice(&small)),
        _ => {
            let d_at = if format == WeightFormat::Q6_K { 208 } else { 0 };
            for blk in bytes.chunks_mut(format.block_bytes()) {
                blk[d_at..d_at + 2].copy_from_slice(&small);
                blk[2..4].copy_from_slice(&small); // min / dmin where there is one
            }
        }
    }
    PackedMatrix::from_ggml(format, rows, cols, &bytes).unwrap()
}

/// Bytes the DRAM-resident decode case cycles through (far above the
/// last-level caches of current CPUs).
const DRAM_BYTES: usize = 256 << 20;

fn bench(c: &mut Criterion) {
    for format in WeightFormat::ALL {
        let k_quant = format.block_values() == 256;
        let (ffn_rows, ffn_cols) = if k_quant { (576, 1536) } else { (1536, 576) };
        let mut shapes = vec![("ffn", ffn_rows, ffn_cols)];
        if !k_quant {
            shapes.push(("head", 49152, 576));
        }
        for (name, rows, cols) in shapes {
            let w = matrix(format, rows, cols, 7);
            let mut group = c.benchmark_group(format!("{format}_{name}_{rows}x{cols}"));
            group.sample_size(20);
            group.warm_up_time(std::time::Duration::from_millis(300));
            group.measurement_time(std::time::Duration::from_secs(1));
            let x = vec![0.5f32; 64 * cols];
            let mut out = vec![0f32; 64 * rows];
            group.throughput(Throughput::Bytes(w.storage_bytes() as u64));
            group.bench_function("decode", |b| {
                b.iter(|| w.matmul(&x[..cols], 1, &mut out[..rows]).unwrap())
            });
            if name == "ffn" {
                group.throughput(Throughput::Elements((64 * rows * cols) as u64));
                group.bench_function("prefill_m64", |b| {
                    b.iter(|| w.matmul(&x, 64, &mut out).unwrap())
                });
            }
            group.finish();
        }
        for (name, rows, cols) in [("1b_up", 8192, 2048), ("1b_down", 2048, 8192)] {
            let first = matrix(format, rows, cols, 7);
            let copies = DRAM_BYTES.div_ceil(first.storage_bytes());
            let ws: Vec<PackedMatrix> = std::iter::once(first)
                .chain((1..copies).map(|i| matrix(format, rows, cols, 7 + i as u64)))
                .collect();
            let mut group = c.benchmark_group(format!("{format}_{name}_{rows}x{cols}"));
            group.sample_size(10);
            group.warm_up_time(std::time::Duration::from_millis(300));
            group.measurement_time(std::time::Duration::from_secs(2));
            let x = vec![0.5f32; 64 * cols];
            let mut out = vec![0f32; 64 * rows];
            group.throughput(Throughput::Bytes(ws[0].storage_bytes() as u64));
            let mut next = 0;
            group.bench_function("decode_dram", |b| {
                b.iter(|| {
                    next = (next + 1) % ws.len();
                    ws[next].matmul(&x[..cols], 1, &mut out[..rows]).unwrap()
                })
            });
            group.throughput(Throughput::Elements((64 * rows * cols) as u64));
            group.bench_function("prefill_m64", |b| {
                b.iter(|| ws[0].matmul(&x, 64, &mut out).unwrap())
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
