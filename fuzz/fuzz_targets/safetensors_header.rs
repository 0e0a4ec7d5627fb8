//! safetensors: our header validation; a file it accepts must also pass the
//! safetensors crate's own reader (which candle uses).
#![no_main]

use libfuzzer_sys::fuzz_target;
use normscope::weights::validate::safetensors_header;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = safetensors_header::check(data) {
        let st = safetensors::SafeTensors::deserialize(data)
            .expect("safetensors rejects a validated header");
        for t in &header.tensors {
            let view = st.tensor(&t.name).expect("validated tensor is readable");
            assert_eq!(view.shape(), t.shape.as_slice());
            assert_eq!(view.data().len(), t.end - t.start);
        }
    }
});
