//! Malformed k-quant GGUF files: a 256-wide tiny model whose `ffn_up` is
//! stored as Q4_K and `ffn_down` as Q6_K (super-blocks of 256), then made to
//! lie in one place. Each case runs both the loader (`generate`) and
//! `quantize`, which must fail with one line naming the file.

use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;

use super::files::{Gguf, GgufTensor};
use super::{case, generate, Case};
use crate::common::{normscope, Tiny};

const Q4_K: u32 = 12;
const Q5_K: u32 = 13;
const Q6_K: u32 = 14;
const UP: &str = "blk.0.ffn_up.weight";
const DOWN: &str = "blk.1.ffn_down.weight";

fn tiny() -> Tiny {
    Tiny {
        hidden: 256,
        ffn: 256,
        ..Tiny::default()
    }
}

fn requantize(t: &mut GgufTensor, dtype: GgmlDType, id: u32) {
    let values: Vec<f32> = t
        .data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    t.data =
        normscope::model::quantize::blocks::quantize(dtype, &values, t.ne[0] as usize).unwrap();
    t.ggml_type = id;
}

/// The k-quant tiny model with `DOWN` (Q6_K) moved to the end of the file.
fn kquant_gguf() -> Gguf {
    let mut g = Gguf::tiny(&tiny());
    requantize(g.tensor(UP), GgmlDType::Q4K, Q4_K);
    requantize(g.tensor(DOWN), GgmlDType::Q6K, Q6_K);
    let i = g.tensors.iter().position(|t| t.name == DOWN).unwrap();
    let down = g.tensors.remove(i);
    g.tensors.push(down);
    g
}

fn write(dir: &Path, edit: impl Fn(&mut Gguf), bytes: impl Fn(&mut Vec<u8>)) -> PathBuf {
    let mut g = kquant_gguf();
    edit(&mut g);
    let mut b = g.bytes();
    bytes(&mut b);
    let p = dir.join("k.gguf");
    std::fs::write(&p, b).unwrap();
    p
}

fn quantize(model: &Path, dir: &Path) -> Vec<String> {
    [
        "quantize",
        model.to_str().unwrap(),
        "--type",
        "q4_k_m",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([dir.join("out.gguf").to_str().unwrap().to_string()])
    .collect()
}

/// One case through `generate` and one through `quantize`.
fn both(
    name: &'static str,
    needle: &'static str,
    edit: impl Fn(&mut Gguf) + Clone + 'static,
    bytes: impl Fn(&mut Vec<u8>) + Clone + 'static,
) -> [Case; 2] {
    let (e2, b2) = (edit.clone(), bytes.clone());
    [
        case(name, needle, move |d| {
            generate(&write(d, &edit, &bytes), &[])
        }),
        case(name, needle, move |d| quantize(&write(d, &e2, &b2), d)),
    ]
}

/// The k-quant cases of the malformed-input table.
pub fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(both(
        "GGUF Q4_K rows not a whole number of super-blocks",
        "rows of 128 elements are not a multiple of the Q4K block size 256",
        |g| g.tensor(UP).ne = vec![128, 512],
        |_| {},
    ));
    all.extend(both(
        "GGUF truncated inside a Q6_K tensor",
        "run past the end",
        |_| {},
        |b| b.truncate(b.len() - 100),
    ));
    all.extend(both(
        "GGUF lying type id (Q4_K data labelled Q5_K)",
        "overlaps",
        |g| g.tensor(UP).ggml_type = Q5_K,
        |_| {},
    ));
    all.extend(both(
        "GGUF lying type id (Q6_K data labelled Q8_0)",
        "run past the end",
        |g| g.tensor(DOWN).ggml_type = 8,
        |_| {},
    ));
    all.push(case(
        "quantize a GGUF with NaN in a tensor it copies as stored",
        "tensor `output_norm.weight` holds NaN at element 3",
        |d| {
            let p = write(
                d,
                |g| {
                    g.tensor("output_norm.weight").data[12..16]
                        .copy_from_slice(&f32::NAN.to_le_bytes())
                },
                |_| {},
            );
            quantize(&p, d)
        },
    ));
    all
}

/// The untouched k-quant file loads, runs, and quantizes: the cases above
/// fail for their one lie.
#[test]
fn the_untouched_k_quant_file_loads_runs_and_quantizes() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), |_| {}, |_| {});
    for args in [generate(&p, &["--check-weights"]), quantize(&p, dir.path())] {
        let out = normscope().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
