//! GGUF: our header walker and model checks (every architecture), then candle's reader, which must
//! accept every file the walker accepts and read each tensor it lists. Every
//! tensor is then dequantized and quantized again into each type `quantize`
//! writes whose block fits its rows (arbitrary bytes make NaN, Inf and
//! subnormal values, which the quantizers must take without panicking), and
//! `quantize`'s own metadata walker and recipe run over the file.
#![no_main]

use std::io::Cursor;

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::GgmlDType;
use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use normscope::quantize::recipe::{self, ModelInfo, TensorDesc};
use normscope::model::quantize::blocks;
use normscope::quantize::{gguf_out, Target};
use normscope::weights::validate::ggml_types::byte_size;
use normscope::weights::validate::{gguf_header, gguf_model};

const WRITTEN: [GgmlDType; 11] = [
    GgmlDType::F32,
    GgmlDType::F16,
    GgmlDType::BF16,
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
];

fuzz_target!(|data: &[u8]| {
    let Ok(layout) = gguf_header::check(data) else {
        return;
    };
    let _ = gguf_model::check(&layout);
    let content = Content::read(&mut Cursor::new(data)).expect("candle rejects a validated header");
    let kvs = gguf_out::read_kvs(data).expect("quantize cannot walk a validated header");
    assert_eq!(kvs.len(), layout.metadata.len());
    let mut descs = Vec::new();
    for t in &layout.tensors {
        let q = content
            .tensor(&mut Cursor::new(data), &t.name, &Device::Cpu)
            .expect("candle cannot read a validated tensor");
        assert_eq!(q.shape().dims(), t.shape().as_slice());
        let values: Vec<f32> = q
            .dequantize(&Device::Cpu)
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.to_vec1())
            .expect("candle cannot dequantize a validated tensor");
        for dtype in WRITTEN {
            if t.ne[0] % dtype.block_size() != 0 || values.is_empty() {
                continue;
            }
            let bytes = blocks::quantize(dtype, &values, t.ne[0]).expect("quantize refused a fitting row");
            assert_eq!(Ok(bytes.len()), byte_size(dtype, t.ne[0], values.len()));
        }
        descs.push(TensorDesc {
            name: t.name.clone(),
            ne: t.ne.clone(),
            dtype: t.dtype,
        });
    }
    descs.sort_by(|a, b| recipe::llama_order(&a.name, &b.name));
    let info = ModelInfo {
        arch: "llama".into(),
        n_layer: descs.len(),
        n_head: 4,
        n_head_kv: 2,
        n_expert: 0,
    };
    for target in Target::ALL {
        let _ = recipe::plan(&descs, &info, target);
    }
});
