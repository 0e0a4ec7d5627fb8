//! GGUF: our header walker and llama checks, then candle's reader, which must
//! accept every file the walker accepts and read each tensor it lists.
#![no_main]

use std::io::Cursor;

use candle_core::quantized::gguf_file::Content;
use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use normscope::weights::validate::{gguf_header, gguf_llama};

fuzz_target!(|data: &[u8]| {
    let Ok(layout) = gguf_header::check(data) else {
        return;
    };
    let _ = gguf_llama::check(&layout);
    let content = Content::read(&mut Cursor::new(data)).expect("candle rejects a validated header");
    for t in &layout.tensors {
        let q = content
            .tensor(&mut Cursor::new(data), &t.name, &Device::Cpu)
            .expect("candle cannot read a validated tensor");
        assert_eq!(q.shape().dims(), t.shape().as_slice());
    }
});
