//! The file types `quantize --type` writes: their names, llama.cpp's
//! `LLAMA_FTYPE` numbers (stored as `general.file_type`) and the default
//! tensor type each starts from.

use candle_core::quantized::GgmlDType;

/// A file type `normscope quantize` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every weight in f32.
    F32,
    /// Every 2-D weight in f16.
    F16,
    /// Every 2-D weight in bf16.
    BF16,
    /// llama.cpp's Q8_0 recipe.
    Q8_0,
    /// llama.cpp's Q4_0 recipe (the LM head gets Q6_K where rows allow).
    Q4_0,
    /// llama.cpp's Q4_1 recipe.
    Q4_1,
    /// llama.cpp's Q5_0 recipe.
    Q5_0,
    /// llama.cpp's Q5_1 recipe.
    Q5_1,
    /// Every quantizable weight Q4_K (llama-quantize `--pure` Q4_K_S).
    Q4K,
    /// Every quantizable weight Q5_K (llama-quantize `--pure` Q5_K_S).
    Q5K,
    /// llama.cpp's Q6_K recipe.
    Q6K,
    /// llama.cpp's Q4_K_M mix (Q4_K, with Q6_K for some attn_v / ffn_down and the head).
    Q4KM,
    /// llama.cpp's Q5_K_M mix (Q5_K, with Q6_K for some attn_v / ffn_down and the head).
    Q5KM,
}

impl Target {
    /// Every target, in the order `--help` lists them.
    pub const ALL: [Target; 13] = [
        Target::F32,
        Target::F16,
        Target::BF16,
        Target::Q8_0,
        Target::Q4_0,
        Target::Q4_1,
        Target::Q5_0,
        Target::Q5_1,
        Target::Q4K,
        Target::Q5K,
        Target::Q6K,
        Target::Q4KM,
        Target::Q5KM,
    ];

    /// The `--type` spelling.
    pub fn name(self) -> &'static str {
        match self {
            Target::F32 => "f32",
            Target::F16 => "f16",
            Target::BF16 => "bf16",
            Target::Q8_0 => "q8_0",
            Target::Q4_0 => "q4_0",
            Target::Q4_1 => "q4_1",
            Target::Q5_0 => "q5_0",
            Target::Q5_1 => "q5_1",
            Target::Q4K => "q4_k",
            Target::Q5K => "q5_k",
            Target::Q6K => "q6_k",
            Target::Q4KM => "q4_k_m",
            Target::Q5KM => "q5_k_m",
        }
    }

    /// Parses a `--type` value (case-insensitive); the error lists the valid ones.
    pub fn parse(s: &str) -> Result<Target, String> {
        let lower = s.to_ascii_lowercase();
        Target::ALL
            .into_iter()
            .find(|t| t.name() == lower)
            .ok_or_else(|| {
                let names: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "--type `{s}` is not known; valid types: {}",
                    names.join(", ")
                )
            })
    }

    /// llama.cpp's `LLAMA_FTYPE` number, written as `general.file_type`.
    pub fn ftype(self) -> u32 {
        match self {
            Target::F32 => 0,
            Target::F16 => 1,
            Target::Q4_0 => 2,
            Target::Q4_1 => 3,
            Target::Q8_0 => 7,
            Target::Q5_0 => 8,
            Target::Q5_1 => 9,
            Target::Q4K => 14, // MOSTLY_Q4_K_S
            Target::Q4KM => 15,
            Target::Q5K => 16, // MOSTLY_Q5_K_S
            Target::Q5KM => 17,
            Target::Q6K => 18,
            Target::BF16 => 32,
        }
    }

    /// The tensor type a weight starts from before the recipe adjusts it
    /// (llama.cpp's `llama_ftype_get_default_type`).
    pub fn default_type(self) -> GgmlDType {
        match self {
            Target::F32 => GgmlDType::F32,
            Target::F16 => GgmlDType::F16,
            Target::BF16 => GgmlDType::BF16,
            Target::Q8_0 => GgmlDType::Q8_0,
            Target::Q4_0 => GgmlDType::Q4_0,
            Target::Q4_1 => GgmlDType::Q4_1,
            Target::Q5_0 => GgmlDType::Q5_0,
            Target::Q5_1 => GgmlDType::Q5_1,
            Target::Q4K | Target::Q4KM => GgmlDType::Q4K,
            Target::Q5K | Target::Q5KM => GgmlDType::Q5K,
            Target::Q6K => GgmlDType::Q6K,
        }
    }

    /// True for the single-type targets that skip llama.cpp's per-tensor
    /// recipe (its `--pure`); the row-width fallback still applies.
    pub fn pure(self) -> bool {
        matches!(self, Target::Q4K | Target::Q5K)
    }
}

/// ggml's name for a tensor type (`q4_K`, `f16`, ...), as llama.cpp prints it.
pub fn ggml_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "f32",
        GgmlDType::F16 => "f16",
        GgmlDType::BF16 => "bf16",
        GgmlDType::Q4_0 => "q4_0",
        GgmlDType::Q4_1 => "q4_1",
        GgmlDType::Q5_0 => "q5_0",
        GgmlDType::Q5_1 => "q5_1",
        GgmlDType::Q8_0 => "q8_0",
        GgmlDType::Q8_1 => "q8_1",
        GgmlDType::Q2K => "q2_K",
        GgmlDType::Q3K => "q3_K",
        GgmlDType::Q4K => "q4_K",
        GgmlDType::Q5K => "q5_K",
        GgmlDType::Q6K => "q6_K",
        GgmlDType::Q8K => "q8_K",
    }
}

/// ggml's type id for a tensor type (the number GGUF stores).
pub fn ggml_id(t: GgmlDType) -> u32 {
    match t {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q5_0 => 6,
        GgmlDType::Q5_1 => 7,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q8_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 12,
        GgmlDType::Q5K => 13,
        GgmlDType::Q6K => 14,
        GgmlDType::Q8K => 15,
        GgmlDType::BF16 => 30,
    }
}
