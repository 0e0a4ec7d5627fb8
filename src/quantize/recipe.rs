//! Which type each tensor gets: llama.cpp's `llama_tensor_get_type`
//! (src/llama-quant.cpp, llama.cpp as vendored by llama-cpp-python 0.3.36),
//! restricted to the file types [`Target`] offers and without imatrix or
//! user overrides:
//!
//! - only weights with 2 or more dimensions are quantized; norms, 1-D tensors
//!   and the few names llama.cpp exempts keep their stored type;
//! - the LM head (`output.weight`, or a tied `token_embd.weight` when there is
//!   no `output.weight`) gets Q6_K, or Q8_0 when its rows do not fit the
//!   default type's blocks (or the target is Q8_0);
//! - in the _M mixes, `attn_v` and `ffn_down` get Q6_K in the layers
//!   `use_more_bits` picks (the first and last eighth, then every third);
//! - a row length that is not a multiple of the chosen type's block falls back
//!   (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and F16 when even 32 does not divide it).
//!
//! Tensors are visited in llama.cpp's order (its loader's `weight_name_comparer`:
//! tensors outside `blk.N` first, then by block, by name within each), which
//! is also the order they are written in, so the per-layer counters agree.

use std::cmp::Ordering;

use candle_core::quantized::GgmlDType;

use super::target::Target;

/// What the recipe needs to know about a tensor.
#[derive(Debug, Clone)]
pub struct TensorDesc {
    /// GGUF name (`blk.3.attn_v.weight`).
    pub name: String,
    /// Dimensions in ggml order (`ne[0]` is the row length).
    pub ne: Vec<usize>,
    /// The type it is stored in now.
    pub dtype: GgmlDType,
}

/// What the recipe needs to know about the model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// `general.architecture`.
    pub arch: String,
    /// Number of blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Experts per MoE layer (0 for a dense model).
    pub n_expert: usize,
}

impl ModelInfo {
    /// llama.cpp's `LLM_TYPE_70B`: an 80-layer LLaMA with grouped-query attention.
    fn is_70b(&self) -> bool {
        self.arch == "llama" && self.n_layer == 80 && self.n_head != self.n_head_kv
    }
}

/// The block number of a `blk.N.` name, as C's `sscanf(name, "blk.%d.")` reads it (-1 otherwise).
pub fn layer_of(name: &str) -> i64 {
    let Some(rest) = name.strip_prefix("blk.") else {
        return -1;
    };
    let (sign, digits) = match rest.as_bytes().first() {
        Some(b'-') => (-1, &rest[1..]),
        Some(b'+') => (1, &rest[1..]),
        _ => (1, rest),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    match digits[..end].parse::<i64>() {
        Ok(n) if end > 0 => sign * n,
        _ => -1,
    }
}

/// llama.cpp's tensor order: by block (non-block tensors first), then by name.
pub fn llama_order(a: &str, b: &str) -> Ordering {
    layer_of(a).cmp(&layer_of(b)).then_with(|| a.cmp(b))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

fn category(name: &str) -> Category {
    if name == "output.weight" {
        return Category::Output;
    }
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        return Category::TokenEmbd;
    }
    for (needle, cat) in [
        ("attn_qkv.weight", Category::AttnQkv),
        ("attn_kv_b.weight", Category::AttnKvB),
        ("attn_v.weight", Category::AttnV),
        ("attn_k.weight", Category::AttnK),
        ("attn_q.weight", Category::AttnQ),
        ("attn_output.weight", Category::AttnOutput),
        ("ffn_up", Category::FfnUp),
        ("ffn_gate", Category::FfnGate),
        ("ffn_down", Category::FfnDown),
    ] {
        if name.contains(needle) {
            return cat;
        }
    }
    Category::Other
}

fn is_attn_v(c: Category) -> bool {
    matches!(c, Category::AttnV | Category::AttnQkv | Category::AttnKvB)
}

/// llama.cpp's `tensor_allows_quantization` (the names it exempts that can
/// occur in the architectures normscope reads, and the generic ones).
fn allows_quantization(t: &TensorDesc) -> bool {
    if ggml_n_dims(&t.ne) < 2 {
        return false;
    }
    let name = t.name.as_str();
    if !name.ends_with("weight") || name.contains("_norm.weight") {
        return false;
    }
    const KEEP: [&str; 11] = [
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "attn_rel_b.weight",
        ".position_embd",
        ".rel_pos",
        ".patch_embd",
    ];
    !(KEEP.iter().any(|k| name.contains(k))
        || name == "position_embd.weight"
        || name == "token_types.weight"
        || name.contains("time_mix_"))
}

/// ggml's `ggml_n_dims`: trailing dimensions of 1 do not count (at least 1).
fn ggml_n_dims(ne: &[usize]) -> usize {
    ne.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1)
}

/// llama.cpp's counters over the tensors seen so far.
struct State<'a> {
    info: &'a ModelInfo,
    target: Target,
    n_attention_wv: usize,
    i_attention_wv: usize,
    i_ffn_down: usize,
    tied: bool,
    fallbacks: usize,
}

fn use_more_bits(i_layer: i64, n_layers: i64) -> bool {
    // C integer division truncates toward zero, as Rust's does.
    i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2
}

/// The outcome for each tensor, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The type each tensor is written in.
    pub types: Vec<GgmlDType>,
    /// How many tensors fell back to another type because of their row length.
    pub fallbacks: usize,
}

/// Chooses every tensor's type; `tensors` must be in [`llama_order`].
pub fn plan(tensors: &[TensorDesc], info: &ModelInfo, target: Target) -> Result<Plan, String> {
    let mut st = State {
        info,
        target,
        n_attention_wv: tensors
            .iter()
            .filter(|t| is_attn_v(category(&t.name)))
            .count(),
        i_attention_wv: 0,
        i_ffn_down: 0,
        tied: !tensors.iter().any(|t| t.name == "output.weight"),
        fallbacks: 0,
    };
    let mut types = Vec::with_capacity(tensors.len());
    for t in tensors {
        types.push(st.tensor_type(t)?);
    }
    Ok(Plan {
        types,
        fallbacks: st.fallbacks,
    })
}

impl State<'_> {
    /// `llama_tensor_get_type`.
    fn tensor_type(&mut self, t: &TensorDesc) -> Result<GgmlDType, String> {
        if !allows_quantization(t) {
            return Ok(t.dtype);
        }
        let default = self.target.default_type();
        if default.block_size() == 1 {
            return Ok(default); // F32, F16, BF16: no recipe, no fallback
        }
        let chosen = if self.target.pure() {
            default
        } else {
            self.impl_type(t, default)?
        };
        Ok(self.fallback(t, chosen))
    }

    /// `llama_tensor_get_type_impl` for the file types of [`Target`].
    fn impl_type(&mut self, t: &TensorDesc, mut new: GgmlDType) -> Result<GgmlDType, String> {
        use GgmlDType as G;
        let cat = category(&t.name);
        let arch = self.info.arch.as_str();
        let ftype = self.target;
        let n_expert = self.info.n_expert;
        if cat == Category::Output || (self.tied && cat == Category::TokenEmbd) {
            let nx = t.ne[0];
            if arch == "falcon" || !nx.is_multiple_of(new.block_size()) {
                new = G::Q8_0;
            } else if new != G::Q8_0 {
                new = G::Q6K;
            }
        } else if cat == Category::TokenEmbd {
            // nothing for these file types
        } else if is_attn_v(cat) {
            if matches!(ftype, Target::Q4KM | Target::Q5KM)
                && use_more_bits(self.i_attention_wv as i64, self.n_attention_wv as i64)
            {
                new = G::Q6K;
            }
            if self.info.is_70b() && matches!(new, G::Q3K | G::Q4K) {
                new = G::Q5K;
            }
            if n_expert == 8 {
                new = G::Q8_0;
            }
            self.i_attention_wv += 1;
        } else if cat == Category::AttnK {
            if n_expert == 8 {
                new = G::Q8_0;
            }
        } else if cat == Category::FfnDown {
            let (i_layer, n_layer) = self.layer_info(self.i_ffn_down, &t.name)?;
            match ftype {
                Target::Q4KM if arch == "falcon" => {
                    new = if i_layer < n_layer / 16 {
                        G::Q6K
                    } else if use_more_bits(i_layer, n_layer) {
                        G::Q5K
                    } else {
                        G::Q4K
                    };
                }
                Target::Q4KM | Target::Q5KM if use_more_bits(i_layer, n_layer) => new = G::Q6K,
                _ => {}
            }
            self.i_ffn_down += 1;
        } else if cat == Category::AttnOutput
            && arch != "falcon"
            && n_expert == 8
            && ftype == Target::Q4KM
        {
            new = G::Q5K;
        }
        Ok(new)
    }

    /// llama.cpp's `layer_info`: the running counter, or the block number in
    /// the name for a mixture-of-experts model.
    fn layer_info(&self, counter: usize, name: &str) -> Result<(i64, i64), String> {
        let n_layer = self.info.n_layer as i64;
        if self.info.n_expert.max(1) > 1 {
            let i = layer_of(name);
            if !name.starts_with("blk.") || i < 0 || i >= n_layer {
                return Err(format!(
                    "tensor `{name}`: cannot tell its block (expected blk.N with N below {n_layer})"
                ));
            }
            return Ok((i, n_layer));
        }
        Ok((counter as i64, n_layer))
    }

    /// `tensor_type_fallback`: a compatible type when rows do not fit the blocks.
    fn fallback(&mut self, t: &TensorDesc, target: GgmlDType) -> GgmlDType {
        use GgmlDType as G;
        let ncols = t.ne[0];
        if ncols.is_multiple_of(target.block_size()) {
            return target;
        }
        self.fallbacks += 1;
        let ret = match target {
            G::Q2K | G::Q3K => G::Q4_0,
            G::Q4K => G::Q5_0,
            G::Q5K => G::Q5_1,
            G::Q6K => G::Q8_0,
            other => other, // a 32-block type: only F16 is left
        };
        if ncols.is_multiple_of(ret.block_size()) {
            ret
        } else {
            G::F16
        }
    }
}
