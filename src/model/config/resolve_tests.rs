//! Tests of `config.json` resolution (both transformers layouts, both architectures).

use crate::model::config::{Activation, Architecture, Config, HfConfig};
use crate::model::Placement;

fn base() -> serde_json::Value {
    serde_json::json!({
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100
    })
}

fn resolve(v: serde_json::Value) -> std::result::Result<Config, String> {
    serde_json::from_value::<HfConfig>(v).unwrap().resolve()
}

#[test]
fn transformers5_rope_parameters_are_read() {
    let mut v = base();
    v["rope_parameters"] = serde_json::json!({"rope_type": "default", "rope_theta": 100000.0});
    assert_eq!(resolve(v).unwrap().rope_theta, 100000.0);
}

#[test]
fn transformers4_rope_theta_and_llama3_scaling() {
    let mut v = base();
    v["rope_theta"] = serde_json::json!(500000.0);
    v["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0,
        "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
    let c = resolve(v).unwrap();
    assert_eq!(c.rope_theta, 500000.0);
    assert_eq!(c.llama3_scaling().unwrap().factor, 8.0);
}

#[test]
fn eos_as_list_and_defaults() {
    let mut v = base();
    v["eos_token_id"] = serde_json::json!([2, 7]);
    let c = resolve(v).unwrap();
    assert_eq!(c.eos_token_ids, vec![2, 7]);
    assert_eq!(c.head_dim, 16);
    assert_eq!(c.rope_theta, 10000.0);
    assert!(!c.tie_word_embeddings);
}

#[test]
fn inconsistent_heads_are_rejected() {
    let mut v = base();
    v["num_key_value_heads"] = serde_json::json!(3);
    assert!(resolve(v).unwrap_err().contains("not a multiple"));
    let mut v = base();
    v["num_attention_heads"] = serde_json::json!(6);
    assert!(resolve(v).unwrap_err().contains("not divisible"));
}

#[test]
fn round_trip_through_hf_layout() {
    let c = resolve(base()).unwrap();
    let again = c.to_hf("float32").resolve().unwrap();
    assert_eq!(c, again);
}

#[test]
fn placement_is_read_and_written_under_normscope_keys() {
    let mut v = base();
    v["normscope_norm_placement"] = serde_json::json!("deepnorm");
    v["normscope_deepnorm_alpha"] = serde_json::json!(1.5);
    let c = resolve(v).unwrap();
    assert_eq!(
        c.placement,
        Placement::DeepNorm {
            alpha: 1.5,
            beta: 16f64.powf(-0.25)
        }
    );
    let json = serde_json::to_value(c.to_hf("float32")).unwrap();
    assert_eq!(json["normscope_norm_placement"], "deepnorm");
    assert_eq!(json["normscope_deepnorm_alpha"], 1.5);
    let pre = serde_json::to_value(resolve(base()).unwrap().to_hf("float32")).unwrap();
    assert!(pre
        .as_object()
        .unwrap()
        .keys()
        .all(|k| !k.starts_with("normscope")));
}

fn gemma() -> serde_json::Value {
    serde_json::json!({
        "model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"],
        "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18,
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
        "vocab_size": 262144, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "rope_local_base_freq": 10000.0, "sliding_window": 512,
        "_sliding_window_pattern": 6, "query_pre_attn_scalar": 256,
        "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 32768,
        "attn_logit_softcapping": null, "final_logit_softcapping": null
    })
}

#[test]
fn gemma3_transformers4_layout() {
    let c = resolve(gemma()).unwrap();
    assert_eq!(c.architecture, Architecture::Gemma3);
    assert_eq!(c.placement, Placement::Peri);
    assert_eq!(c.activation, Activation::GeluTanh);
    assert!(c.qk_norm == Some(crate::model::config::QkNorm::PerHead) && c.tie_word_embeddings);
    assert_eq!((c.rope_theta, c.local_rope_theta), (1e6, 1e4));
    let full: Vec<usize> = (0..18).filter(|&l| c.window(l).is_none()).collect();
    assert_eq!(full, vec![5, 11, 17]);
    assert_eq!(c.window(0), Some(512));
    assert_eq!(c.attention_scale(), 1.0 / 16.0);
    assert_eq!(c.embedding_scale, Some(640f64.sqrt()));
}

#[test]
fn gemma3_transformers5_layout_reads_layer_types_and_nested_rope() {
    let mut v = gemma();
    let o = v.as_object_mut().unwrap();
    for k in [
        "rope_theta",
        "rope_local_base_freq",
        "_sliding_window_pattern",
    ] {
        o.remove(k);
    }
    let kinds: Vec<&str> = (0..18)
        .map(|l| {
            if l % 3 == 2 {
                "full_attention"
            } else {
                "sliding_attention"
            }
        })
        .collect();
    v["layer_types"] = serde_json::json!(kinds);
    v["rope_parameters"] = serde_json::json!({
        "full_attention": {"rope_type": "default", "rope_theta": 2000000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 20000.0}
    });
    let c = resolve(v).unwrap();
    assert_eq!((c.rope_theta, c.local_rope_theta), (2e6, 2e4));
    assert_eq!(c.window(2), None);
    assert_eq!(c.window(3), Some(512));
    assert_eq!(c.to_hf("float32").resolve().unwrap(), c);
}

#[test]
fn gemma3_round_trips_and_bad_fields_are_named() {
    let c = resolve(gemma()).unwrap();
    let json = serde_json::to_value(c.to_hf("float32")).unwrap();
    assert_eq!(json["sliding_window_pattern"], 6);
    assert_eq!(json["model_type"], "gemma3_text");
    assert_eq!(c.to_hf("float32").resolve().unwrap(), c);
    for (key, value, says) in [
        ("sliding_window", serde_json::json!(0), "sliding_window"),
        (
            "_sliding_window_pattern",
            serde_json::json!(0),
            "sliding_window_pattern",
        ),
        (
            "final_logit_softcapping",
            serde_json::json!(30.0),
            "final_logit_softcapping",
        ),
        ("hidden_activation", serde_json::json!("relu"), "relu"),
        (
            "layer_types",
            serde_json::json!(["full_attention"]),
            "layer_types",
        ),
        ("model_type", serde_json::json!("gemma3"), "gemma3_text"),
    ] {
        let mut v = gemma();
        v[key] = value;
        let err = resolve(v).unwrap_err();
        assert!(err.contains(says), "{key}: {err}");
    }
}
