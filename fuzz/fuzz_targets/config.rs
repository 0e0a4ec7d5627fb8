//! config.json: parsing, resolution and the size limits, and the round trip of
//! an accepted configuration through the Hugging Face layout.
#![no_main]

use libfuzzer_sys::fuzz_target;
use normscope::model::config::HfConfig;
use normscope::weights::validate::config;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<HfConfig>(data) else {
        return;
    };
    let Ok(cfg) = raw.resolve() else {
        return;
    };
    if config::check(&cfg).is_ok() {
        let again = cfg.to_hf("float32").resolve().expect("round trip resolves");
        assert_eq!(cfg.num_heads, again.num_heads);
        assert_eq!(cfg.head_dim, again.head_dim);
    }
});
