//! Tests of the model layout: names in both conventions, which tensors a checkpoint holds.

use super::*;
use crate::model::config::tests::tiny_config;

#[test]
fn llama_names_follow_both_conventions() {
    let cfg = tiny_config();
    let s = spec(&cfg, Site::Block(3, Part::O));
    assert_eq!(s.hf_name, "model.layers.3.self_attn.o_proj.weight");
    assert_eq!(s.gguf_name, "blk.3.attn_output.weight");
    assert_eq!(s.shape, vec![cfg.hidden_size, cfg.num_heads * cfg.head_dim]);
    let m = spec(&cfg, Site::Block(0, Part::MlpNorm));
    assert_eq!(m.hf_name, "model.layers.0.post_attention_layernorm.weight");
    assert_eq!(m.gguf_name, "blk.0.ffn_norm.weight");
    assert_eq!(spec(&cfg, Site::Head).gguf_name, "output.weight");
}

#[test]
fn a_llama_checkpoint_holds_nine_tensors_per_block() {
    let mut cfg = tiny_config();
    cfg.tie_word_embeddings = true;
    let names: Vec<String> = tensors(&cfg).into_iter().map(|t| t.hf_name).collect();
    assert_eq!(names.len(), 2 + 9 * cfg.num_layers);
    assert_eq!(names[0], "model.embed_tokens.weight");
    assert_eq!(names.last().unwrap(), "model.norm.weight");
    cfg.tie_word_embeddings = false;
    assert_eq!(tensors(&cfg).last().unwrap().hf_name, "lm_head.weight");
}

#[test]
fn gemma_norms_are_named_apart_and_offset() {
    let mut cfg = tiny_config();
    cfg.architecture = Architecture::Gemma3;
    cfg.qk_norm = Some(crate::model::config::QkNorm::PerHead);
    cfg.placement = crate::model::Placement::Peri;
    cfg.tie_word_embeddings = true;
    assert_eq!(tensors(&cfg).len(), 2 + 13 * cfg.num_layers);
    let mlp_norm = spec(&cfg, Site::Block(1, Part::MlpNorm));
    assert_eq!(
        mlp_norm.hf_name,
        "model.layers.1.pre_feedforward_layernorm.weight"
    );
    assert_eq!(mlp_norm.hf_gain_offset, 1.0);
    let post = spec(&cfg, Site::Block(1, Part::AttnPostNorm));
    assert_eq!(post.gguf_name, "blk.1.post_attention_norm.weight");
    assert_eq!(
        spec(&cfg, Site::Block(0, Part::QNorm)).shape,
        vec![cfg.head_dim]
    );
    assert_eq!(spec(&cfg, Site::Block(0, Part::Q)).hf_gain_offset, 0.0);
}
