//! config.json: parsing, resolution and the size limits (every architecture),
//! and the round trip of an accepted configuration through the Hugging Face
//! layout, which must give the same configuration back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use normscope::model::config::HfConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<HfConfig>(data) else {
        return;
    };
    let Ok(cfg) = raw.resolve() else {
        return;
    };
    // What normscope writes back (convert, variants) must describe the same model.
    let again = cfg.to_hf("float32").resolve().expect("round trip resolves");
    assert_eq!(cfg, again);
});
