#!/usr/bin/env python3
"""Reference fixtures for the LLaMA-style family: Qwen2/2.5, Qwen3, Llama 3.x,
Mistral, Phi-3, OLMo 2 and SmolLM3, made without any real checkpoint.

For each architecture this script
  1. builds a tiny tokenizer with the family's real conventions: a byte-level
     BPE (trained here, deterministically, on data/genesis-kjv.txt plus a few
     lines with digits, contractions, non-ASCII and emoji) behind the family's
     real pre-tokenizer (Split regex + ByteLevel, NFC for Qwen), real special
     tokens, BOS/EOS ids and add-BOS behaviour; or, for Mistral and Phi-3, a
     SentencePiece BPE model with byte fallback (tokenizer.model) loaded as
     transformers' LlamaTokenizer;
  2. builds a tiny random model with `AutoModelForCausalLM.from_config`
     (float32, eager attention; hidden 64, 4 query / 2 KV heads, FFN 128),
     re-initialised from a seeded generator: matrices N(0, 0.1), norm gains
     1 + 0.1 N(0,1), biases 0.2 N(0,1) (transformers would leave gains at 1 and
     biases at 0, which hides bugs);
  3. saves it with `save_pretrained` (+ tokenizer, chat template inside
     tokenizer_config.json, generation_config.json) to
     tests/fixtures/family/<name>/hf/, reloads that folder, and checks the
     reload reproduces the in-memory logits bit for bit;
  4. converts the folder with llama.cpp's own `convert_hf_to_gguf.py --outtype
     f32` (the vendored gguf-py on sys.path, so converter and gguf-py match) to
     tests/fixtures/family/<name>/model-f32.gguf. For BPE families the
     converter's pre-tokenizer hash check cannot know a fixture tokenizer, so
     `TextModel.get_vocab_base_pre` is monkeypatched (in a child process, never
     in llama.cpp's files) to return the name llama.cpp gives the real model;
  5. writes tests/fixtures/family/<name>/ref.json and .npy files: last-position
     logits, the residual stream after every block, 24 greedy steps without a
     KV cache with their top-2 margins, per-block figures (the fields of
     ../shared/refs/hf/p1.json), tokenizer ids from transformers AND from
     llama.cpp's `llama-tokenize` on the GGUF for ~25 strings, chat renderings,
     and a summary of the GGUF's metadata and tensors;
  6. optionally (when the llama.cpp build has libllama) runs a 60-line C++
     program against libllama on the GGUF and records llama.cpp's own
     last-position logits and greedy ids next to transformers', so that the
     fixture itself shows what llama.cpp computes from the converted file.

Sanity assertions: every family's distinguishing feature changes the logits
(> 1e-2 max abs): llama3 RoPE scaling on/off, smollm3 NoPE on/off, mistral
window on/off, qwen2 q/k/v biases on/off, qwen3 and olmo2 QK-norm on/off;
phi3's fused weights split into a Llama model give the same logits.

Precision: everything in float32 on CPU with one thread (torch.set_num_threads(1))
and eager attention, so rerunning gives identical files. Per-block figures are
computed in float64 from the float32 captured tensors. The residual stream is
captured with forward hooks on the decoder layers (row 0 = what enters block 0,
row l+1 = block l's output, before the final norm); transformers'
output_hidden_states is not used for it (its last entry is post-norm in some
models). h_out == h_in + a + m is asserted per block (a = what the attention
sublayer adds to the residual; for OLMo 2 the post-attention RMSNorm of
attention's output; m likewise for the MLP).

usage:
  scripts/reference_family.py                       # all seven families
  scripts/reference_family.py --only qwen2,llama3   # some of them
      [--llama-cpp DIR]   llama.cpp source tree with build/bin (default /work/ext/llama.cpp,
                          or $LLAMA_CPP); convert_hf_to_gguf.py and gguf-py are taken from it
      [--out DIR]         default tests/fixtures/family
      [--no-llamacpp-run] skip llama-tokenize and the libllama logits check
                          (fields are then null and marked)
needs: torch, transformers (5.x), safetensors, numpy, tokenizers, sentencepiece,
protobuf, regex, jinja2 (pip install into a venv outside the repo); a llama.cpp
build with llama-tokenize (cmake, see tests/fixtures/family/README.md).
"""
import argparse
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "family"
DEFAULT_LLAMA_CPP = Path(os.environ.get("LLAMA_CPP", "/work/ext/llama.cpp"))

N_GREEDY = 24
SEED = 20250611

# ----------------------------------------------------------------- the text

TRAIN_EXTRA = [
    "In the year 1611 there were 31102 verses, 1189 chapters and 66 books; 3.14159 and 2.71828.",
    "Call 555-0123 or +1 (800) 123-4567 before 12:30; 100% of 2048 is 2048, not 20480.",
    "I'm sure you're right: they'll say we've done it, he'd go, she's here, it's 'quoted'.",
    "HE'S HERE AND WE'LL SEE; YOU'RE SURE THEY'VE GONE? I'D SAY IT'S DONE, DON'T YOU?",
    "Café, naïve, façade, résumé, Ångström, Zürich, São Paulo, Kraków, Dvořák, Straße.",
    "def f(x):\n\treturn x ** 2  # square\n\n    indented = [1, 2, 3]\n",
]
TRAIN_EXTRA_WIDE = [  # byte-level BPE only: SentencePiece would make these whole pieces
    "日本語のテキスト、中文字符和한국어 텍스트。",
    "Emoji: 🦙 🚀 😀 👍🏽 ❤️ 😶‍🌫️ 🇫🇷",
]

PROMPT = "In the beginning God created the heaven and the earth, and it was void."

# llama.cpp's own pre-tokenizer check string (conversion/base.py, get_vocab_base_pre)
CHKTXT = ('\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 '
          '3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български \'\'\'\'\'\'```````""""......!!!!!!?????? '
          'I\'ve been \'told he\'s there, \'RE you sure? \'M not sure I\'ll make it, \'D you like some tea? We\'Ve a\'lL')

TOKENIZE_STRINGS = [
    ("plain", "Hello world"),
    ("leading_space", " leading space"),
    ("two_leading_spaces", "  two leading spaces"),
    ("trailing_space", "trailing space "),
    ("digits", "In 1611, 31102 verses; 3.14159 and 1234567890 and 00042."),
    ("long_digit_run", "9876543210123456789"),
    ("contractions", "I'm sure you're right, they'll say we've done it, he'd go, it's 'quoted'"),
    ("contractions_upper", "HE'S HERE, WE'LL SEE, YOU'RE 'RE 'M 'D 'VE 'T 'LL 'S"),
    ("tabs", "tabs\tand\t\tmore\ttabs"),
    ("newlines", "line one\nline two\n\nline four\r\nwindows\n"),
    ("space_runs", "spaces   in    between     words"),
    ("whitespace_only", "   \n\n   \t  "),
    ("latin", "Café naïve façade résumé Ångström Straße"),
    ("decomposed_accent", "Cafe\u0301 nai\u0308ve"),
    ("cjk", "日本語のテキストと中文字符"),
    ("emoji", "emoji 🦙🚀 and 😶\u200d🌫️ zwj 👍🏽"),
    ("code", "x = f(a, b) * 2; // {brackets} [0] --> === !=\n\tif (x) { return; }"),
    ("punct", "!!!??? ... ---- \"quotes\" (parens) ''''"),
    ("nbsp", "non\u00a0breaking and\u2009thin space"),
    ("chktxt", CHKTXT),
]

CHAT = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What did God create in the beginning?"},
    {"role": "assistant", "content": "The heaven and the earth."},
    {"role": "user", "content": "And what was upon the face of the deep?"},
]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_verse",
        "description": "Look up a verse of Genesis.",
        "parameters": {
            "type": "object",
            "properties": {
                "chapter": {"type": "integer", "description": "Chapter number"},
                "verse": {"type": "integer", "description": "Verse number"},
            },
            "required": ["chapter", "verse"],
        },
    },
}

# ----------------------------------------------------------------- pre-tokenizers
# The Split regex of each real tokenizer.json (Hugging Face / Oniguruma syntax).

RE_QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
RE_LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# OLMo 2's dolma2 tokenizer is cl100k_base: the same pattern as Llama 3's.
RE_CL100K = RE_LLAMA3

# The regexes llama.cpp uses for the pre-tokenizer names below (src/llama-vocab.cpp,
# llm_tokenizer_bpe); recorded in ref.json so the Rust side can cite them.
LLAMACPP_REGEX = {
    "qwen2": ["(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
    "llama-bpe": ["(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
    "dbrx": ["(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
    "smaug-bpe": ["(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
}
LLAMACPP_PRE_FLAGS = {  # what llama-vocab.cpp ends up with for that name (BPE defaults: add_bos false,
    # clean_spaces true, ignore_merges false; then the tokenizer.ggml.add_bos_token key, if present, wins)
    "qwen2": {"pre_type": "LLAMA_VOCAB_PRE_TYPE_QWEN2", "clean_spaces": False, "ignore_merges": False, "add_bos_default": False},
    "llama-bpe": {"pre_type": "LLAMA_VOCAB_PRE_TYPE_LLAMA3", "clean_spaces": True, "ignore_merges": True, "add_bos_default": True},
    "dbrx": {"pre_type": "LLAMA_VOCAB_PRE_TYPE_DBRX", "clean_spaces": True, "ignore_merges": False, "add_bos_default": False},
    "smaug-bpe": {"pre_type": "LLAMA_VOCAB_PRE_TYPE_SMAUG", "clean_spaces": True, "ignore_merges": False, "add_bos_default": False},
    None: {"vocab_type": "SPM (tokenizer.ggml.model llama)", "add_space_prefix": True, "clean_spaces": False,
           "add_bos_default": True},
}

TEMPLATES = "models/templates"  # inside the llama.cpp tree

LLAMACPP_SOURCE = "llama-cpp-python 0.3.36 sdist, vendor/llama.cpp (commit 0c1e570)"

# What llama.cpp does with each converted file (src/llama-model.cpp llama_model_rope_type,
# src/models/<arch>.cpp, conversion/*.py); recorded in ref.json as "llamacpp_semantics".
LLAMACPP_NOTES = {
    "qwen2": {"rope": "NEOX (half-split), rows not permuted by the converter",
              "model": "src/models/qwen2.cpp: pre-norm; attn_q/k/v.bias added after the projections; no output.weight, "
                       "token_embd is the head",
              "ignored": "no sliding-window key is written (use_sliding_window false); config.json's sliding_window unused"},
    "qwen3": {"rope": "NEOX, rows not permuted",
              "model": "src/models/qwen3.cpp: attn_q_norm / attn_k_norm (width head_dim = key_length 32) applied per head "
                       "after the projection and before RoPE; attention scale 1/sqrt(head_dim); q is 128 wide, hidden 64"},
    "llama3": {"rope": "NORM (interleaved pairs); the converter permuted attn_q/attn_k rows (LlamaModel.permute)",
               "model": "src/models/llama.cpp: rope_freqs.weight [head_dim/2] divides each pair's frequency "
                        "(theta_i = pos * base^(-2i/d) / rope_freqs[i]); no rope.scaling.* keys are written",
               "rope_freqs_rule": "1 if wavelength < orig/high_freq_factor; factor if wavelength > orig/low_freq_factor; "
                                  "else 1 / ((1 - s)/factor + s), s = (orig/wavelength - low)/(high - low)"},
    "mistral": {"rope": "NORM; attn_q/attn_k rows permuted (MistralForCausalLM is converted by LlamaModel)",
                "model": "general.architecture llama, src/models/llama.cpp",
                "ignored": "sliding_window: the converter writes no window key and llama.cpp runs full attention; "
                           "compare the GGUF against the full_attention section"},
    "phi3": {"rope": "NEOX, rows not permuted",
             "model": "src/models/phi3.cpp: attn_qkv fused [q; k; v] (ne [64, 128]); ffn_up fused [gate; up] "
                      "(ne [64, 256]) with ggml_swiglu = silu(first half) * second half; q scaled by 1/sqrt(head_dim) "
                      "before attention",
             "ignored": "phi3.attention.sliding_window (2047 here) is read and then disabled with a warning "
                        "(swa_type NONE): full attention"},
    "olmo2": {"rope": "NEOX, rows not permuted",
              "model": "src/models/olmo2.cpp: no attn_norm / ffn_norm; x + post_attention_norm(attn(x)), then "
                       "h + post_ffw_norm(mlp(h)); attn_q_norm [n_head*head_dim = 64] and attn_k_norm "
                       "[n_kv*head_dim = 32] over the whole projection before the per-head reshape and RoPE"},
    "smollm3": {"rope": "NORM; attn_q/attn_k rows permuted (SmolLM3Model subclasses LlamaModel)",
                "model": "src/models/smollm3.cpp: n_no_rope_layer_step hardcoded to 4: block il uses RoPE iff "
                         "(il + 1) % 4 != 0 (block 3 here has none); the GGUF carries no NoPE key "
                         "(config.json's no_rope_layers / no_rope_layer_interval are not converted)"},
}

DISAGREEMENT_NOTES = {
    "qwen2": {"decomposed_accent": "Qwen's tokenizer.json has an NFC normalizer; llama.cpp's qwen2 pre-tokenizer does "
                                   "not normalize, so a decomposed e + U+0301 tokenizes differently (HF composes it to "
                                   "U+00E9 first). Every other string agrees."},
    "qwen3": {"decomposed_accent": "as qwen2: NFC in the Hugging Face tokenizer, none in llama.cpp"},
}

# OLMo 2 Instruct's template (allenai/OLMo-2-1124-7B-Instruct, the Tülu 3 format); llama.cpp
# ships no OLMo template file, so it is written out here.
OLMO2_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ '<|system|>\n' + message['content'] + '\n' }}{% elif message['role'] == 'user' %}"
    "{{ '<|user|>\n' + message['content'] + '\n' }}{% elif message['role'] == 'assistant' %}"
    "{% if not loop.last %}{{ '<|assistant|>\n'  + message['content'] + eos_token + '\n' }}"
    "{% else %}{{ '<|assistant|>\n'  + message['content'] + eos_token }}{% endif %}{% endif %}"
    "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}{% endfor %}"
)

# ----------------------------------------------------------------- the families

QWEN25_ADDED = [  # (content, special) in id order after the base vocabulary, as Qwen2.5
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False), ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False),
]
QWEN3_ADDED = QWEN25_ADDED + [
    ("<tool_response>", False), ("</tool_response>", False), ("<think>", False), ("</think>", False),
]
LLAMA3_ADDED = [(t, True) for t in (
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|reserved_special_token_3|>",
    "<|eot_id|>", "<|python_tag|>")]
SMOLLM3_ADDED = [(t, True) for t in (
    "<|begin_of_text|>", "<|end_of_text|>", "<think>", "</think>", "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
    "<|reserved_special_token_3|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>")]
OLMO2_ADDED = [(t, True) for t in (
    "<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>", "<|pad|>")]
MISTRAL_CONTROL = ["[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                   "[TOOL_RESULTS]", "[/TOOL_RESULTS]"]
PHI3_ADDED = [  # (content, rstrip) ids 32000.. in Phi-3 mini; all special
    ("<|endoftext|>", False), ("<|assistant|>", True), ("<|placeholder1|>", True),
    ("<|placeholder2|>", True), ("<|placeholder3|>", True), ("<|placeholder4|>", True),
    ("<|system|>", True), ("<|end|>", True), ("<|placeholder5|>", True),
    ("<|placeholder6|>", True), ("<|user|>", True)]

COMMON = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
              hidden_act="silu", initializer_range=0.1, attention_dropout=0.0)

FAMILIES = {
    "qwen2": dict(
        model_type="qwen2", gguf_arch="qwen2", blocks=2, vocab_size=448, n_merges=150,
        what="Qwen2 / Qwen2.5: q/k/v biases, tied head, use_sliding_window false",
        tok=dict(kind="bpe", regex=RE_QWEN2, nfc=True, ignore_merges=False, added=QWEN25_ADDED,
                 bos=None, eos="<|im_end|>", pad="<|endoftext|>", unk=None, add_bos=False,
                 tokenizer_class="Qwen2Tokenizer", pre="qwen2", real="Qwen/Qwen2.5-0.5B-Instruct",
                 clean_up_tokenization_spaces=False, model_max_length=131072),
        template="Qwen-Qwen2.5-7B-Instruct.jinja", tools=True,
        config=dict(rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                    rms_norm_eps=1e-6, tie_word_embeddings=True, max_position_embeddings=4096,
                    use_sliding_window=False, sliding_window=None, max_window_layers=2),
        ids=dict(bos_token_id="<|endoftext|>", eos_token_id="<|im_end|>"),
        gen=dict(bos_token_id="<|endoftext|>", eos_token_id=["<|im_end|>", "<|endoftext|>"], pad_token_id="<|endoftext|>"),
        # Qwen2.5's real config.json (written by transformers 4) carries a sliding_window value
        # with use_sliding_window false; transformers 5 writes null. Put a value back, small
        # enough to change the result if a loader applied it: it must be ignored.
        config_json_patch={"sliding_window": 16},
    ),
    "qwen3": dict(
        model_type="qwen3", gguf_arch="qwen3", blocks=2, vocab_size=448, n_merges=150,
        what="Qwen3: per-head q/k RMSNorm (width head_dim), head_dim 32 independent of hidden 64, no bias, tied",
        tok=dict(kind="bpe", regex=RE_QWEN2, nfc=True, ignore_merges=False, added=QWEN3_ADDED,
                 bos=None, eos="<|im_end|>", pad="<|endoftext|>", unk=None, add_bos=False,
                 tokenizer_class="Qwen2Tokenizer", pre="qwen2", real="Qwen/Qwen3-0.6B",
                 clean_up_tokenization_spaces=False, model_max_length=131072),
        template="Qwen-Qwen3-0.6B.jinja", tools=True,
        config=dict(head_dim=32, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                    rms_norm_eps=1e-6, tie_word_embeddings=True, max_position_embeddings=4096,
                    attention_bias=False, use_sliding_window=False, sliding_window=None, max_window_layers=2),
        ids=dict(bos_token_id="<|endoftext|>", eos_token_id="<|im_end|>"),
        gen=dict(bos_token_id="<|endoftext|>", eos_token_id=["<|im_end|>", "<|endoftext|>"], pad_token_id="<|endoftext|>"),
    ),
    "llama3": dict(
        model_type="llama", gguf_arch="llama", blocks=2, vocab_size=448, n_merges=180,
        what="Llama 3.x: llama3 RoPE scaling (rope_freqs.weight in the GGUF), llama-bpe pre-tokenizer, BOS added, tied (3.2 1B/3B)",
        tok=dict(kind="bpe", regex=RE_LLAMA3, nfc=False, ignore_merges=True, added=LLAMA3_ADDED,
                 bos="<|begin_of_text|>", eos="<|eot_id|>", pad=None, unk=None, add_bos=True,
                 tokenizer_class="PreTrainedTokenizerFast", pre="llama-bpe", real="meta-llama/Llama-3.2-1B-Instruct",
                 clean_up_tokenization_spaces=True, model_max_length=131072, trim_offsets=True),
        template="meta-llama-Llama-3.2-3B-Instruct.jinja", tools=True,
        template_kwargs={"date_string": "26 Jul 2024"},
        # theta/original context chosen so that, with head_dim 16, the three branches of the
        # llama3 rule all occur: dim pair 0 (wavelength 6.3 < 64/4) unchanged, pair 1
        # (wavelength 24.3) smoothed, pairs 2..7 divided by 8.
        config=dict(rope_parameters={"rope_type": "llama3", "rope_theta": 50000.0, "factor": 8.0,
                                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 64},
                    rms_norm_eps=1e-5, tie_word_embeddings=True, max_position_embeddings=512,
                    attention_bias=False, mlp_bias=False, head_dim=16),
        ids=dict(bos_token_id="<|begin_of_text|>", eos_token_id=["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"]),
        gen=dict(bos_token_id="<|begin_of_text|>", eos_token_id=["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"]),
    ),
    "mistral": dict(
        model_type="mistral", gguf_arch="llama", blocks=2, vocab_size=480,
        what="Mistral: sliding-window attention (window 8 < prompt); GGUF arch llama, no window there",
        tok=dict(kind="spm", control=MISTRAL_CONTROL, added=[], bos="<s>", eos="</s>", unk="<unk>", pad=None,
                 add_bos=True, tokenizer_class="LlamaTokenizer", pre=None, real="mistralai/Mistral-7B-Instruct-v0.3", spm_vocab=480,
                 legacy=False),
        template="mistralai-Mistral-Nemo-Instruct-2407.jinja", tools=True,
        config=dict(rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, rms_norm_eps=1e-5,
                    tie_word_embeddings=False, max_position_embeddings=4096, sliding_window=8, head_dim=16),
        ids=dict(bos_token_id="<s>", eos_token_id="</s>"),
        gen=dict(bos_token_id="<s>", eos_token_id="</s>"),
    ),
    "phi3": dict(
        model_type="phi3", gguf_arch="phi3", blocks=2, vocab_size=448,
        what="Phi-3: fused qkv_proj and gate_up_proj, untied head, SentencePiece tokenizer.model",
        tok=dict(kind="spm", control=[], added=PHI3_ADDED, bos="<s>", eos="<|endoftext|>", unk="<unk>",
                 pad="<|endoftext|>", add_bos=False, tokenizer_class="LlamaTokenizer", pre=None,
                 real="microsoft/Phi-3-mini-4k-instruct", legacy=False, spm_vocab=436),
        template="microsoft-Phi-3.5-mini-instruct.jinja", tools=False,
        # sliding_window 2047 as Phi-3-mini-4k's config: larger than every sequence here, so
        # transformers' window has no effect, and llama.cpp ignores it anyway (phi3.cpp).
        config=dict(rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0},
                    rms_norm_eps=1e-5, tie_word_embeddings=False, max_position_embeddings=4096,
                    original_max_position_embeddings=4096, sliding_window=2047, resid_pdrop=0.0, embd_pdrop=0.0),
        ids=dict(bos_token_id="<s>", eos_token_id="<|endoftext|>", pad_token_id="<|endoftext|>"),
        gen=dict(bos_token_id="<s>", eos_token_id=["<|endoftext|>", "<|assistant|>", "<|end|>"], pad_token_id="<|endoftext|>"),
    ),
    "olmo2": dict(
        model_type="olmo2", gguf_arch="olmo2", blocks=2, vocab_size=448, n_merges=150,
        what="OLMo 2: no pre-sublayer norms, x + RMSNorm(Attn(x)), x + RMSNorm(MLP(x)); QK-norm over the whole q/k projection",
        tok=dict(kind="bpe", regex=RE_CL100K, nfc=False, ignore_merges=False, added=OLMO2_ADDED,
                 bos="<|endoftext|>", eos="<|endoftext|>", pad="<|pad|>", unk="<|endoftext|>", add_bos=False,
                 tokenizer_class="GPT2Tokenizer", pre="dbrx", real="allenai/OLMo-2-1124-7B-Instruct",
                 clean_up_tokenization_spaces=False, model_max_length=4096),
        template=None, template_text=OLMO2_TEMPLATE, tools=False,
        config=dict(rope_parameters={"rope_type": "default", "rope_theta": 500000.0}, rms_norm_eps=1e-6,
                    tie_word_embeddings=False, max_position_embeddings=4096, attention_bias=False),
        ids=dict(bos_token_id=None, eos_token_id="<|endoftext|>", pad_token_id="<|pad|>"),
        gen=dict(eos_token_id="<|endoftext|>", pad_token_id="<|pad|>"),
    ),
    "smollm3": dict(
        model_type="smollm3", gguf_arch="smollm3", blocks=4, vocab_size=448, n_merges=179,
        what="SmolLM3: no RoPE on every 4th block (block 3 of 4), Llama 3 tokenizer (smaug-bpe), no BOS added",
        tok=dict(kind="bpe", regex=RE_LLAMA3, nfc=False, ignore_merges=False, added=SMOLLM3_ADDED,
                 bos=None, eos="<|im_end|>", pad="<|im_end|>", unk=None, add_bos=False,
                 tokenizer_class="PreTrainedTokenizerFast", pre="smaug-bpe", real="HuggingFaceTB/SmolLM3-3B",
                 clean_up_tokenization_spaces=True, model_max_length=65536, trim_offsets=True),
        # llama.cpp's copy of SmolLM3's template has no tools block (the real one takes xml_tools=/python_tools=)
        template="HuggingFaceTB-SmolLM3-3B.jinja", tools=False,
        config=dict(rope_parameters={"rope_type": "default", "rope_theta": 5000000.0}, rms_norm_eps=1e-6,
                    tie_word_embeddings=True, max_position_embeddings=4096, no_rope_layer_interval=4,
                    use_sliding_window=False, sliding_window=None, attention_bias=False, mlp_bias=False),
        ids=dict(bos_token_id="<|begin_of_text|>", eos_token_id="<|im_end|>", pad_token_id="<|im_end|>"),
        gen=dict(bos_token_id="<|begin_of_text|>", eos_token_id="<|im_end|>", pad_token_id="<|im_end|>"),
    ),
}

# ----------------------------------------------------------------- helpers


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def f32(x):
    """A float32 value written as the shortest decimal that rounds back to the same float32."""
    import numpy as np
    return float(str(np.float32(x)))


def g10(x):
    return float(f"{float(x):.10g}")


def dump_json(obj):
    """JSON with one key per line and lists of scalars on one line (small, diffable)."""
    def fmt(o, ind):
        pad, pad1 = " " * ind, " " * (ind + 1)
        if isinstance(o, dict):
            if not o:
                return "{}"
            items = [f"{pad1}{json.dumps(str(k), ensure_ascii=False)}: {fmt(v, ind + 1)}" for k, v in o.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(o, (list, tuple)):
            if all(not isinstance(x, (dict, list, tuple)) for x in o):
                return json.dumps(list(o), ensure_ascii=False)
            return "[\n" + ",\n".join(pad1 + fmt(x, ind + 1) for x in o) + "\n" + pad + "]"
        return json.dumps(o, ensure_ascii=False)
    return fmt(obj, 0) + "\n"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


def training_lines(wide):
    text = (ROOT / "data" / "genesis-kjv.txt").read_text(encoding="utf-8")
    lines = [l for l in text.split("\n") if l.strip()]
    return lines + TRAIN_EXTRA + (TRAIN_EXTRA_WIDE if wide else [])


def train_byte_bpe(regex_src, n_merges, nfc):
    """A deterministic byte-level BPE: pre-tokenize with the family's regex, count chunks,
    merge the most frequent adjacent pair n_merges times (ties: the smaller pair as strings).
    Returns (vocab dict token->id in GPT-2 byte order then merge order, merges list)."""
    import regex
    import unicodedata
    b2u = dict(bytes_to_unicode())
    pat = regex.compile(regex_src)
    words = Counter()
    for line in training_lines(wide=True):
        t = unicodedata.normalize("NFC", line + "\n") if nfc else line + "\n"
        for m in pat.finditer(t):
            words["".join(b2u[b] for b in m.group(0).encode("utf-8"))] += 1
    seqs = {w: list(w) for w in words}
    vocab = {}
    for _, ch in bytes_to_unicode():
        vocab[ch] = len(vocab)
    merges = []
    while len(merges) < n_merges:
        pairs = Counter()
        for w, c in words.items():
            s = seqs[w]
            for i in range(len(s) - 1):
                pairs[(s[i], s[i + 1])] += c
        best = None
        for p, c in pairs.items():
            if p[0] + p[1] in vocab:
                continue
            if best is None or c > best[1] or (c == best[1] and p < best[0]):
                best = (p, c)
        if best is None:
            break
        (a, b), _ = best
        merges.append((a, b))
        vocab[a + b] = len(vocab)
        for w in words:
            s = seqs[w]
            if len(s) < 2:
                continue
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return vocab, merges


def build_bpe_tokenizer(fam, template):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    t = fam["tok"]
    vocab, merges = train_byte_bpe(t["regex"], fam["n_merges"], t["nfc"])
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=t["ignore_merges"],
                               fuse_unk=False, byte_fallback=False))
    trim = t.get("trim_offsets", False)
    if t["nfc"]:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(t["regex"]), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=trim, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=trim, trim_offsets=trim, use_regex=trim)
    for content, special in t["added"]:
        at = AddedToken(content, special=special, normalized=False, lstrip=False, rstrip=False, single_word=False)
        if special:
            tok.add_special_tokens([at])
        else:
            tok.add_tokens([at])
    if t["add_bos"]:
        bos_id = tok.token_to_id(t["bos"])
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
            processors.TemplateProcessing(single=f"{t['bos']}:0 $A:0", pair=f"{t['bos']}:0 $A:0 {t['bos']}:1 $B:1",
                                          special_tokens=[(t["bos"], bos_id)]),
        ])
    else:
        tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    kw = dict(tokenizer_object=tok, bos_token=t["bos"], eos_token=t["eos"], pad_token=t["pad"], unk_token=t["unk"],
              clean_up_tokenization_spaces=t["clean_up_tokenization_spaces"], model_max_length=t["model_max_length"],
              chat_template=template)
    return PreTrainedTokenizerFast(**kw), len(merges)


def train_spm(fam, path):
    import sentencepiece as spm
    t = fam["tok"]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_lines(wide=False)), model_writer=buf,
        vocab_size=t["spm_vocab"],
        model_type="bpe", byte_fallback=True, split_digits=True, character_coverage=1.0,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        allow_whitespace_only_pieces=True, split_by_unicode_script=True, split_by_number=True,
        max_sentencepiece_length=16, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        control_symbols=t["control"] or None, num_threads=1, minloglevel=2, hard_vocab_limit=True)
    path.write_bytes(buf.getvalue())


def build_spm_tokenizer(fam, template, work):
    from tokenizers import AddedToken
    from transformers import LlamaTokenizer
    t = fam["tok"]
    d = work / "spm"
    d.mkdir(parents=True, exist_ok=True)
    train_spm(fam, d / "tokenizer.model")
    tok = LlamaTokenizer.from_pretrained(str(d), legacy=t["legacy"], add_bos_token=t["add_bos"],
                                         add_eos_token=False, bos_token=t["bos"], unk_token=t["unk"])
    if t["added"]:
        tok.add_tokens([AddedToken(c, special=True, normalized=False, rstrip=r, lstrip=False, single_word=False)
                        for c, r in t["added"]], special_tokens=True)
    tok.eos_token = t["eos"]
    if t["pad"]:
        tok.pad_token = t["pad"]
    tok.chat_template = template
    return tok, d / "tokenizer.model"


def tok_id(tok, s):
    if s is None:
        return None
    if isinstance(s, list):
        return [tok_id(tok, x) for x in s]
    i = tok.convert_tokens_to_ids(s)
    assert i is not None and tok.convert_ids_to_tokens(i) == s, s
    return i


# ----------------------------------------------------------------- the model


def make_config(fam, tok):
    from transformers import CONFIG_MAPPING
    kw = dict(COMMON)
    kw.update(fam["config"])
    kw["num_hidden_layers"] = fam["blocks"]
    kw["vocab_size"] = fam["vocab_size"]
    for k, v in fam["ids"].items():
        kw[k] = tok_id(tok, v)
    if "pad_token_id" not in kw:
        kw["pad_token_id"] = None
    return CONFIG_MAPPING[fam["model_type"]](**kw)


def randomize(model, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    rng = model.config.initializer_range
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            z = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith(".bias"):
                p.copy_(0.2 * z)
            elif "norm" in name:
                p.copy_(1.0 + 0.1 * z)
            else:
                p.copy_(rng * z)


def load_model(folder):
    import torch
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="eager")
    m.eval()
    return m


def logits_of(model, ids):
    import torch
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()


def capture(model, ids, post_norm):
    """Run once with hooks; return (stack [blocks+1, T, H], per-block (h_in, a, m, h_out), logits)."""
    import torch
    rec = {}
    hooks = []

    def first(o):
        return o[0] if isinstance(o, (tuple, list)) else o

    for i, layer in enumerate(model.model.layers):
        def pre(mod, args, kwargs, i=i):
            hs = args[0] if args else kwargs["hidden_states"]
            rec[(i, "in")] = hs.detach().clone()

        def post(mod, args, kwargs, out, i=i):
            rec[(i, "out")] = first(out).detach().clone()

        hooks.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        hooks.append(layer.register_forward_hook(post, with_kwargs=True))
        if post_norm:
            am, mm = layer.post_attention_layernorm, layer.post_feedforward_layernorm
        else:
            am, mm = layer.self_attn, layer.mlp
        hooks.append(am.register_forward_hook(lambda mod, a, o, i=i: rec.__setitem__((i, "a"), first(o).detach().clone())))
        hooks.append(mm.register_forward_hook(lambda mod, a, o, i=i: rec.__setitem__((i, "m"), first(o).detach().clone())))
    try:
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), use_cache=False, output_hidden_states=True)
    finally:
        for h in hooks:
            h.remove()
    n = len(model.model.layers)
    parts = []
    rows = [rec[(0, "in")][0]]
    worst = 0.0
    for i in range(n):
        h_in, a, m, h_out = rec[(i, "in")][0], rec[(i, "a")][0], rec[(i, "m")][0], rec[(i, "out")][0]
        if i > 0:
            assert torch.equal(h_in, rec[(i - 1, "out")][0])
        recon = (h_in + a) + m
        err = float((recon - h_out).abs().max() / h_out.abs().max())
        worst = max(worst, err)
        assert err < 1e-6, f"block {i}: h_out != h_in + a + m (rel {err})"
        parts.append((h_in, a, m, h_out))
        rows.append(h_out)
    hs = out.hidden_states
    last_is_post_norm = not torch.equal(hs[-1][0], rows[-1])
    stack = torch.stack(rows).numpy().astype("float32")
    return stack, parts, out.logits[0].float(), {"max_rel_err_h_out_vs_h_in_plus_a_plus_m": worst,
                                                 "hf_output_hidden_states_last_is_post_norm": last_is_post_norm}


def layer_figures(parts):
    import numpy as np
    res = []
    for l, (h_in, a, m, h_out) in enumerate(parts):
        h_in, a, m, h_out = (x.numpy().astype(np.float64) for x in (h_in, a, m, h_out))
        h_mid = h_in + a
        d = h_out - h_in

        def nrm(x):
            return np.linalg.norm(x, axis=-1)

        def cosv(x, y):
            return (x * y).sum(-1) / (nrm(x) * nrm(y))

        def ang(c):
            return np.arccos(np.clip(c, -1.0, 1.0)) / math.pi

        c, ca, cm = cosv(h_in, h_out), cosv(h_in, h_mid), cosv(h_mid, h_out)
        per = {
            "norm_h_in": nrm(h_in), "norm_attn": nrm(a), "norm_h_mid": nrm(h_mid), "norm_mlp": nrm(m),
            "norm_h_out": nrm(h_out), "norm_delta": nrm(d), "rel_contrib": nrm(d) / nrm(h_in),
            "cos": c, "angular": ang(c), "attn_ratio": nrm(a) / nrm(h_in), "attn_cos": ca, "attn_angular": ang(ca),
            "mlp_ratio": nrm(m) / nrm(h_mid), "mlp_cos": cm, "mlp_angular": ang(cm),
        }
        row = {"layer": l}
        for k, v in per.items():
            row[k] = g10(v.mean())
            row[k + "_excl0"] = g10(v[1:].mean())
        row["bi"] = g10(1 - c.mean())
        row["bi_excl0"] = g10(1 - c[1:].mean())
        row["attn_bi"] = g10(1 - ca.mean())
        row["mlp_bi"] = g10(1 - cm.mean())
        row["attn_bi_excl0"] = g10(1 - ca[1:].mean())
        row["mlp_bi_excl0"] = g10(1 - cm[1:].mean())
        row["angular_of_mean_cos"] = g10(math.acos(max(-1.0, min(1.0, c.mean()))) / math.pi)
        row["per_token"] = {"norm_h_out": [g10(x) for x in per["norm_h_out"]], "cos": [g10(x) for x in c],
                            "rel_contrib": [g10(x) for x in per["rel_contrib"]]}
        res.append(row)
    return res


def greedy(model, ids, n=N_GREEDY):
    import torch
    seq = list(ids)
    out, margins, top1 = [], [], []
    for _ in range(n):
        lg = logits_of(model, seq)[-1]
        v, i = torch.topk(lg, 2)
        out.append(int(i[0]))
        margins.append(f32(v[0] - v[1]))
        top1.append(f32(v[0]))
        seq.append(int(i[0]))
    return {"method": f"argmax loop, full recompute each step (no KV cache), {n} steps, EOS not special",
            "new_ids": out, "margins": margins, "top1_logits": top1,
            "steps_before_first_margin_below_1e-3": next((k for k, m in enumerate(margins) if m < 1e-3), n)}


def references(model, ids, post_norm, outdir, stem):
    import numpy as np
    stack, parts, logits, checks = capture(model, ids, post_norm)
    last = logits[-1].numpy().astype(np.float32)
    np.save(outdir / f"{stem}residual.npy", stack)
    np.save(outdir / f"{stem}last_logits.npy", last)
    order = np.argsort(-last, kind="stable")
    return {
        "last_logits": [f32(x) for x in last],
        "last_logits_file": f"{stem}last_logits.npy",
        "last_top5_ids": [int(i) for i in order[:5]],
        "last_top5_logits": [f32(last[i]) for i in order[:5]],
        "last_logsumexp": g10(np.log(np.exp(last.astype(np.float64) - last.max()).sum()) + last.max()),
        "residual_file": f"{stem}residual.npy",
        "residual_shape": list(stack.shape),
        "greedy": greedy(model, ids),
        "layers": layer_figures(parts),
        "checks": checks,
    }, logits


# ----------------------------------------------------------------- feature checks


def feature_checks(name, fam, model, folder, ids):
    """Assert the family's distinguishing feature matters; returns the measured differences."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM
    base = logits_of(model, ids)
    sd = model.state_dict()

    def variant(cfg_edit=None, sd_edit=None, mod_edit=None, cls=None):
        cfg = copy.deepcopy(model.config)
        if cfg_edit:
            cfg_edit(cfg)
        m = (cls or AutoModelForCausalLM).from_config(cfg, dtype=torch.float32, attn_implementation="eager")
        s = {k: v.clone() for k, v in sd.items()}
        if sd_edit:
            s = sd_edit(s)
        missing, unexpected = m.load_state_dict(s, strict=False)
        assert not [k for k in missing if "rotary" not in k], missing
        if mod_edit:
            mod_edit(m)
        m.eval()
        return float((logits_of(m, ids) - base).abs().max())

    out = {}
    if name == "llama3":
        def no_scale(c):
            c.rope_parameters = {"rope_type": "default", "rope_theta": c.rope_parameters["rope_theta"]}
        out["max_abs_logit_diff_without_llama3_rope_scaling"] = variant(no_scale)
    if name == "smollm3":
        def all_rope(c):
            c.no_rope_layers = [1] * c.num_hidden_layers
        out["max_abs_logit_diff_with_rope_on_every_block"] = variant(all_rope)
        out["no_rope_layers"] = list(model.config.no_rope_layers)
    if name == "mistral":
        def no_window(c):
            c.sliding_window = None
        out["max_abs_logit_diff_without_sliding_window"] = variant(no_window)
    if name == "qwen2":
        def zero_bias(s):
            return {k: (torch.zeros_like(v) if k.endswith("_proj.bias") else v) for k, v in s.items()}
        out["max_abs_logit_diff_with_qkv_bias_zeroed"] = variant(sd_edit=zero_bias)
        out["max_abs_logit_diff_if_sliding_window_16_were_applied"] = variant(
            lambda c: (setattr(c, "sliding_window", 16), setattr(c, "use_sliding_window", True),
                       setattr(c, "max_window_layers", 0),
                       setattr(c, "layer_types", ["sliding_attention"] * c.num_hidden_layers)))
    if name in ("qwen3", "olmo2"):
        def no_qk_norm(m):
            for layer in m.model.layers:
                layer.self_attn.q_norm = torch.nn.Identity()
                layer.self_attn.k_norm = torch.nn.Identity()
        out["max_abs_logit_diff_without_qk_norm"] = variant(mod_edit=no_qk_norm)
    if name == "phi3":
        from transformers import LlamaConfig, LlamaForCausalLM
        c = model.config
        hd = c.hidden_size // c.num_attention_heads
        q, kv = c.num_attention_heads * hd, c.num_key_value_heads * hd
        lc = LlamaConfig(hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                         num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                         num_key_value_heads=c.num_key_value_heads, vocab_size=c.vocab_size,
                         rms_norm_eps=c.rms_norm_eps, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                         tie_word_embeddings=False, max_position_embeddings=c.max_position_embeddings)
        lm = LlamaForCausalLM(lc).eval()
        s = {}
        for k, v in sd.items():
            if "qkv_proj" in k:
                s[k.replace("qkv_proj", "q_proj")] = v[:q]
                s[k.replace("qkv_proj", "k_proj")] = v[q:q + kv]
                s[k.replace("qkv_proj", "v_proj")] = v[q + kv:]
            elif "gate_up_proj" in k:
                s[k.replace("gate_up_proj", "gate_proj")] = v[:c.intermediate_size]
                s[k.replace("gate_up_proj", "up_proj")] = v[c.intermediate_size:]
            else:
                s[k] = v
        missing, unexpected = lm.load_state_dict(s, strict=False)
        assert not [k for k in missing if "rotary" not in k] and not unexpected, (missing, unexpected)
        lm.config._attn_implementation = "eager"
        out["max_abs_logit_diff_split_into_llama"] = float((logits_of(lm, ids) - base).abs().max())
        out["fused_layout"] = ("qkv_proj rows: [q (n_head*head_dim), k (n_kv*head_dim), v (n_kv*head_dim)]; "
                               "gate_up_proj rows: [gate (ffn), up (ffn)]; mlp = down(up * silu(gate))")
        assert out["max_abs_logit_diff_split_into_llama"] < 1e-4, out
    for k, v in out.items():
        if k.startswith("max_abs_logit_diff") and k != "max_abs_logit_diff_split_into_llama":
            assert v > 1e-2, f"{name}: {k} = {v}: the feature does not change the logits"
    return out


# ----------------------------------------------------------------- llama.cpp side


def convert_child(argv):
    """Runs in a child process: llama.cpp's converter with get_vocab_base_pre overridden."""
    llama_cpp, pre, hf_dir, outfile, model_name = argv[:5]
    extra = argv[5:]
    sys.path.insert(0, str(Path(llama_cpp) / "gguf-py"))
    sys.path.insert(0, str(llama_cpp))
    import convert_hf_to_gguf as conv
    from conversion.base import TextModel
    if pre != "-":
        TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
    sys.argv = ["convert_hf_to_gguf.py", hf_dir, "--outfile", outfile, "--outtype", "f32", "--model-name", model_name] + extra
    conv.main()


def convert(llama_cpp, pre, hf_dir, outfile, model_name, extra=()):
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "_convert", str(llama_cpp), pre or "-", str(hf_dir),
           str(outfile), model_name, *extra]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        log(r.stdout[-4000:], r.stderr[-8000:])
        raise SystemExit(f"error: convert_hf_to_gguf.py failed on {hf_dir}")
    return r.stderr


def gguf_summary(llama_cpp, path):
    sys.path.insert(0, str(Path(llama_cpp) / "gguf-py"))
    import gguf
    from gguf import GGUFReader, GGUFValueType
    assert str(Path(gguf.__file__).resolve()).startswith(str(Path(llama_cpp).resolve())), gguf.__file__
    r = GGUFReader(str(path))
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        v = f.contents()
        if k == "tokenizer.chat_template":
            meta[k] = {"chars": len(v), "sha256": hashlib.sha256(v.encode("utf-8")).hexdigest()}
        elif f.types and f.types[0] == GGUFValueType.ARRAY and isinstance(v, list) and len(v) > 16:
            meta[k] = {"array_len": len(v), "first": v[:8]}
        else:
            if isinstance(v, float):
                v = f32(v)
            meta[k] = v
    tensors = [{"name": t.name, "shape": [int(x) for x in t.shape], "type": t.tensor_type.name} for t in r.tensors]
    return meta, tensors


def qk_layout(llama_cpp, gguf_path, hf_dir, cfg):
    """Compare block 0's q/k rows in the GGUF with the folder's: identical, or permuted by
    llama.cpp's LlamaModel.permute (interleaved-pair RoPE layout)."""
    import numpy as np
    from safetensors.numpy import load_file
    sys.path.insert(0, str(Path(llama_cpp) / "gguf-py"))
    from gguf import GGUFReader
    st = load_file(str(Path(hf_dir) / "model.safetensors"))
    gt = {t.name: np.asarray(t.data) for t in GGUFReader(str(gguf_path)).tensors}
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    nq, nkv = cfg.num_attention_heads, cfg.num_key_value_heads

    def permute(w, n):
        return w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    if "model.layers.0.self_attn.qkv_proj.weight" in st:
        w = st["model.layers.0.self_attn.qkv_proj.weight"]
        hq = {"q": w[:nq * hd], "k": w[nq * hd:(nq + nkv) * hd]}
        g = gt["blk.0.attn_qkv.weight"]
        gq = {"q": g[:nq * hd], "k": g[nq * hd:(nq + nkv) * hd]}
    else:
        hq = {"q": st["model.layers.0.self_attn.q_proj.weight"], "k": st["model.layers.0.self_attn.k_proj.weight"]}
        gq = {"q": gt["blk.0.attn_q.weight"], "k": gt["blk.0.attn_k.weight"]}
    res = {}
    for x, n in (("q", nq), ("k", nkv)):
        if np.array_equal(gq[x], hq[x]):
            res[x] = "identical to the folder (half-split / NEOX RoPE layout kept)"
        elif np.array_equal(gq[x], permute(hq[x], n)):
            res[x] = "permuted: w.reshape(n_head, 2, head_dim/2, cols).swapaxes(1, 2) (interleaved / NORM RoPE layout)"
        else:
            res[x] = "neither identical nor llama.cpp-permuted"
    for bias in ("q", "k"):
        b = st.get(f"model.layers.0.self_attn.{bias}_proj.bias")
        if b is not None:
            gb = gt[f"blk.0.attn_{bias}.bias"]
            res[bias + "_bias"] = "identical" if np.array_equal(gb, b) else (
                "permuted" if np.array_equal(gb, permute(b, nq if bias == "q" else nkv)) else "other")
    return res


def hf_tensors(hf_dir):
    """Names and shapes (torch order: [out, in]) of the folder's safetensors, from its header."""
    import struct
    raw = (Path(hf_dir) / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    return [{"name": k, "shape": v["shape"], "dtype": v["dtype"]} for k, v in sorted(head.items()) if k != "__metadata__"]


def llama_tokenize(bin_dir, gguf_path, text, bos):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
        tmp = f.name
    try:
        cmd = [str(bin_dir / "llama-tokenize"), "-m", str(gguf_path), "-f", tmp, "--ids", "--log-disable", "--no-escape"]
        if not bos:
            cmd.append("--no-bos")
        r = subprocess.run(cmd, capture_output=True)
        if r.returncode != 0:
            raise SystemExit(f"error: llama-tokenize failed: {r.stderr.decode(errors='replace')[-2000:]}")
        line = [l for l in r.stdout.decode().splitlines() if l.startswith("[")][-1]
        return json.loads(line)
    finally:
        os.unlink(tmp)


LOGITS_CPP = r"""
// normscope fixture check: llama.cpp's own logits on a GGUF (no sampling, no chat template).
// usage: ref_logits MODEL.gguf N_GREEDY id0,id1,...   -> JSON on stdout
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
static void quiet(ggml_log_level, const char *, void *) {}
static std::vector<float> run(llama_model * model, const std::vector<llama_token> & toks) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512; cp.n_batch = 512; cp.n_ubatch = 512; cp.n_threads = 1; cp.n_threads_batch = 1;
    cp.no_perf = true;
    cp.type_k = GGML_TYPE_F32; cp.type_v = GGML_TYPE_F32;            // the default f16 KV cache costs ~1e-3
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);
    llama_batch b = llama_batch_get_one(const_cast<llama_token *>(toks.data()), (int) toks.size());
    if (llama_decode(ctx, b) != 0) { fprintf(stderr, "decode failed\n"); exit(1); }
    const int nv = llama_vocab_n_tokens(llama_model_get_vocab(model));
    const float * lg = llama_get_logits_ith(ctx, -1);
    std::vector<float> out(lg, lg + nv);
    llama_free(ctx);
    return out;
}
int main(int argc, char ** argv) {
    if (argc < 4) return 2;
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 1;
    int n = atoi(argv[2]);
    std::vector<llama_token> toks;
    for (char * p = strtok(argv[3], ","); p; p = strtok(nullptr, ",")) toks.push_back(atoi(p));
    std::vector<float> last = run(model, toks);
    printf("{\"last_logits\": [");
    for (size_t i = 0; i < last.size(); i++) printf("%s%.9g", i ? ", " : "", last[i]);
    printf("], \"greedy\": [");
    for (int s = 0; s < n; s++) {
        std::vector<float> lg = s == 0 ? last : run(model, toks);
        int best = 0;
        for (size_t i = 1; i < lg.size(); i++) if (lg[i] > lg[best]) best = (int) i;
        printf("%s%d", s ? ", " : "", best);
        toks.push_back(best);
    }
    printf("]}\n");
    llama_model_free(model);
    return 0;
}
"""


def build_logits_tool(llama_cpp):
    build = Path(llama_cpp) / "build"
    lib = build / "bin" / "libllama.so"
    if not lib.exists():
        return None
    exe = build / "bin" / "normscope-ref-logits"
    src = build / "normscope-ref-logits.cpp"
    if not exe.exists() or not src.exists() or src.read_text() != LOGITS_CPP:
        src.write_text(LOGITS_CPP)
        cmd = ["g++", "-O2", "-std=c++17", str(src), "-I", str(Path(llama_cpp) / "include"),
               "-I", str(Path(llama_cpp) / "ggml" / "include"), "-L", str(build / "bin"), "-lllama", "-lggml",
               "-lggml-base", f"-Wl,-rpath,{build / 'bin'}", "-o", str(exe)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            log("warning: could not build the libllama logits check:", r.stderr[-2000:])
            return None
    return exe


def llamacpp_logits(exe, gguf_path, ids, n):
    r = subprocess.run([str(exe), str(gguf_path), str(n), ",".join(map(str, ids))], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    if r.returncode != 0:
        raise SystemExit(f"error: libllama logits check failed on {gguf_path}: {r.stderr[-2000:]}")
    return json.loads(r.stdout)


# ----------------------------------------------------------------- one family


def template_for(fam, llama_cpp):
    if fam.get("template"):
        return (Path(llama_cpp) / TEMPLATES / fam["template"]).read_text(encoding="utf-8"), \
            f"llama.cpp {TEMPLATES}/{fam['template']}"
    return fam["template_text"], "written out in scripts/reference_family.py (OLMO2_TEMPLATE)"


def make_family(name, fam, outroot, llama_cpp, run_llamacpp, logits_exe, seed):
    import numpy as np
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    out = outroot / name
    if out.exists():
        shutil.rmtree(out)
    hf = out / "hf"
    hf.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix=f"nsfam-{name}-"))
    template, template_src = template_for(fam, llama_cpp)
    t = fam["tok"]

    # tokenizer
    if t["kind"] == "bpe":
        tok, n_merges = build_bpe_tokenizer(fam, template)
        spm_file = None
    else:
        tok, spm_file = build_spm_tokenizer(fam, template, work)
        n_merges = None
    assert len(tok) <= fam["vocab_size"], (len(tok), fam["vocab_size"])

    # model
    torch.manual_seed(seed)
    config = make_config(fam, tok)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    randomize(model, seed)
    model.eval()
    gen = {k: tok_id(tok, v) for k, v in fam["gen"].items()}
    model.generation_config = GenerationConfig(**gen)
    model.save_pretrained(str(hf))
    tok.save_pretrained(str(hf), save_jinja_files=False)
    if spm_file is not None:
        shutil.copyfile(spm_file, hf / "tokenizer.model")
    tc_path = hf / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text(encoding="utf-8"))
    tc["tokenizer_class"] = t["tokenizer_class"]
    tc["add_bos_token"] = t["add_bos"]
    tc["add_eos_token"] = False
    if t["kind"] == "bpe":
        tc["add_prefix_space"] = False
    else:
        tc["legacy"] = t["legacy"]
        # The real Mistral / Phi-3 tokenizer.json (written by transformers 4) prepends the
        # SentencePiece dummy prefix with a normalizer, Prepend("▁") + Replace(" ", "▁"), and has
        # no pre-tokenizer; transformers 5 writes Metaspace(prepend_scheme "first") instead, which
        # does not add the prefix to text that already starts with a space (unlike SentencePiece
        # and llama.cpp). Write the real layout.
        tj_path = hf / "tokenizer.json"
        tj = json.loads(tj_path.read_text(encoding="utf-8"))
        tj["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
        tj["pre_tokenizer"] = None
        tj_path.write_text(json.dumps(tj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tc_path.write_text(json.dumps(tc, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    patch = fam.get("config_json_patch")
    if patch:
        cj = json.loads((hf / "config.json").read_text())
        cj.update(patch)
        (hf / "config.json").write_text(json.dumps(cj, indent=2, sort_keys=True) + "\n")

    # reload: everything below uses the folder as a user would load it
    tok2 = AutoTokenizer.from_pretrained(str(hf))
    model2 = load_model(hf)
    sp = None
    if spm_file is not None:
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=str(hf / "tokenizer.model"))
    for _, s in TOKENIZE_STRINGS:
        if sp is None:
            assert tok2(s, add_special_tokens=True)["input_ids"] == tok(s, add_special_tokens=True)["input_ids"], (name, s)
        else:  # the written (transformers 4 layout) tokenizer.json must agree with SentencePiece itself
            assert tok2(s, add_special_tokens=False)["input_ids"] == sp.encode(s), (name, s)
    tok = tok2
    prompt_ids = tok(PROMPT, add_special_tokens=True)["input_ids"]
    assert 20 <= len(prompt_ids) <= 34, (name, len(prompt_ids))
    assert torch.equal(logits_of(model, prompt_ids), logits_of(model2, prompt_ids)), f"{name}: reload differs"
    model = model2
    if fam["model_type"] == "mistral":
        assert len(prompt_ids) > model.config.sliding_window

    post_norm = fam["model_type"] == "olmo2"
    ref, logits = references(model, prompt_ids, post_norm, out, "")
    std = float(logits[-1].std())
    checks = feature_checks(name, fam, model, hf, prompt_ids)

    full = None
    if fam["model_type"] == "mistral":
        model.config.sliding_window = None
        full, flog = references(model, prompt_ids, post_norm, out, "full_attention.")
        model.config.sliding_window = fam["config"]["sliding_window"]
        full["note"] = ("the same weights with the sliding window disabled (config.sliding_window = None): what "
                        "llama.cpp computes from model-f32.gguf, which carries no window")
        full["max_abs_diff_vs_windowed_last_logits"] = float((flog[-1] - logits[-1]).abs().max())

    # GGUF
    gguf_path = out / "model-f32.gguf"
    conv_log = convert(llama_cpp, t["pre"], hf, gguf_path, f"tiny-random-{name}")
    meta, tensors = gguf_summary(llama_cpp, gguf_path)
    layout = qk_layout(llama_cpp, gguf_path, hf, model.config)

    # tokenizer comparisons
    bin_dir = Path(llama_cpp) / "build" / "bin"
    specials_text = {
        "qwen2": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<tool_call>x</tool_call><|endoftext|>",
        "qwen3": "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello<|im_end|>",
        "llama3": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "mistral": "<s>[INST] Hi there [/INST] Hello</s>[INST]again[/INST]",
        "phi3": "<|user|>\nHi there<|end|>\n<|assistant|>\nHello<|end|>\n<|endoftext|>",
        "olmo2": "<|endoftext|>Hello<|pad|> <|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
        "smollm3": "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\nOk<|im_end|>",
    }[name]
    chat = {}
    kw = fam.get("template_kwargs", {})
    chat["messages"] = CHAT
    chat["template_source"] = template_src
    chat["template_kwargs"] = kw
    chat["plain"] = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True, **kw)
    if fam.get("tools"):
        chat["tools"] = [TOOL]
        chat["with_tools"] = tok.apply_chat_template(CHAT, tools=[TOOL], tokenize=False, add_generation_prompt=True, **kw)
    strings = list(TOKENIZE_STRINGS) + [("specials", specials_text), ("prompt", PROMPT), ("chat_plain", chat["plain"])]
    if "with_tools" in chat:
        strings.append(("chat_with_tools", chat["with_tools"]))
    gguf_add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", False))
    toks = []
    disagreements = []
    for key, s in strings:
        e = {"name": key, "text": s,
             "hf_ids": tok(s, add_special_tokens=False)["input_ids"],
             "hf_ids_with_special": tok(s, add_special_tokens=True)["input_ids"]}
        if sp is not None:
            e["sentencepiece_ids"] = sp.encode(s)  # SentencePiece itself: no special-token parsing, no BOS
        if run_llamacpp:
            e["llama_ids"] = llama_tokenize(bin_dir, gguf_path, s, bos=False)
            e["llama_ids_with_bos"] = llama_tokenize(bin_dir, gguf_path, s, bos=True)
            e["agree"] = e["hf_ids"] == e["llama_ids"]
            e["agree_with_bos"] = e["hf_ids_with_special"] == e["llama_ids_with_bos"]
            if not (e["agree"] and e["agree_with_bos"]):
                disagreements.append(key)
        toks.append(e)
    if name == "phi3" and run_llamacpp:
        # llama.cpp gives Phi-3's special tokens the rstrip attribute (as the Hugging Face
        # tokenizer has them) only when general.name, lowercased, contains "phi-3" or "phi3"
        # (llama-vocab.cpp). This fixture's GGUF is named tiny-random-phi3; the converter names a
        # folder called like the real repo "Phi 3 Mini 4k Instruct", which does not match.
        alt = work / "phi3-real-name.gguf"
        convert(llama_cpp, None, hf, alt, "Phi 3 Mini 4k Instruct", ["--vocab-only"])
        rows = []
        for key, s in (("specials", specials_text), ("chat_plain", chat["plain"])):
            ids = llama_tokenize(bin_dir, alt, s, bos=False)
            rows.append({"name": key, "llama_ids": ids, "agrees_with_hf": ids == tok(s, add_special_tokens=False)["input_ids"]})
        finding_phi3 = {"general.name": "Phi 3 Mini 4k Instruct (what convert_hf_to_gguf.py derives from a folder named "
                                        "Phi-3-mini-4k-instruct)", "cases": rows}
    else:
        finding_phi3 = None
    chat["plain_hf_ids"] = tok(chat["plain"], add_special_tokens=False)["input_ids"]
    if "with_tools" in chat:
        chat["with_tools_hf_ids"] = tok(chat["with_tools"], add_special_tokens=False)["input_ids"]

    # llama.cpp's own forward pass on the GGUF
    lcpp = None
    if run_llamacpp and logits_exe is not None:
        r = llamacpp_logits(logits_exe, gguf_path, prompt_ids, N_GREEDY)
        hf_ref = full if full is not None else ref
        hl = np.array(hf_ref["last_logits"], dtype=np.float64)
        ll = np.array(r["last_logits"][:len(hl)], dtype=np.float64)
        g_hf = hf_ref["greedy"]["new_ids"]
        n_ok = hf_ref["greedy"]["steps_before_first_margin_below_1e-3"]
        lcpp = {
            "method": "libllama (this llama.cpp build, CPU, 1 thread, F32 KV cache, no flash attention) on model-f32.gguf: llama_decode of prompt_ids "
                      "as one batch, logits of the last position; greedy = argmax, whole sequence re-decoded in a "
                      "fresh context each step",
            "compared_with": "full_attention" if full is not None else "transformers",
            "last_top5_ids": [int(i) for i in np.argsort(-ll, kind="stable")[:5]],
            "max_abs_diff_last_logits": float(np.abs(hl - ll).max()),
            "max_rel_diff_last_logits": float(np.abs(hl - ll).max() / np.abs(hl).max()),
            "greedy_ids": r["greedy"],
            "greedy_equal_up_to_first_small_margin": r["greedy"][:n_ok] == g_hf[:n_ok],
        }

    cfg = model.config
    doc = {
        "arch": name,
        "model_type": fam["model_type"],
        "what_differs": fam["what"],
        "mirrors": t["real"],
        "made_by": "scripts/reference_family.py",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                     "numpy": np.__version__, "llama_cpp": llama_cpp_version(llama_cpp),
                     "llama_cpp_source": LLAMACPP_SOURCE},
        "seed": seed,
        "config": {
            "hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_hidden_layers,
            "num_attention_heads": cfg.num_attention_heads, "num_key_value_heads": cfg.num_key_value_heads,
            "head_dim": getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads,
            "intermediate_size": cfg.intermediate_size, "vocab_size": cfg.vocab_size,
            "tokenizer_len": len(tok), "bpe_merges": n_merges,
            "rms_norm_eps": cfg.rms_norm_eps, "rope_parameters": cfg.rope_parameters,
            "tie_word_embeddings": cfg.tie_word_embeddings,
            "sliding_window": getattr(cfg, "sliding_window", None),
            "use_sliding_window": getattr(cfg, "use_sliding_window", None),
            "no_rope_layers": getattr(cfg, "no_rope_layers", None),
            "max_position_embeddings": cfg.max_position_embeddings,
            "bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id, "pad_token_id": cfg.pad_token_id,
            "config_json_patch": fam.get("config_json_patch"),
            "attn_implementation": "eager", "dtype": "float32",
        },
        "tokenizer": {
            "kind": "byte-level BPE" if t["kind"] == "bpe" else "SentencePiece BPE, byte_fallback",
            "tokenizer_class": t["tokenizer_class"],
            "hf_regex": t.get("regex"), "nfc": t.get("nfc"), "ignore_merges": t.get("ignore_merges"),
            "bos_token": tok.bos_token, "eos_token": tok.eos_token, "pad_token": tok.pad_token,
            "unk_token": tok.unk_token, "adds_bos": t["add_bos"],
            "gguf_pre": meta.get("tokenizer.ggml.pre"), "gguf_model": meta.get("tokenizer.ggml.model"),
            "llamacpp_regex": LLAMACPP_REGEX.get(t["pre"]) if t["pre"] else None,
            "llamacpp_pre_flags": LLAMACPP_PRE_FLAGS[t["pre"]],
            "converter_chkhsh": chkhsh(tok),
        },
        "prompt": PROMPT,
        "prompt_ids": prompt_ids,
        "prompt_tokens": tok.convert_ids_to_tokens(prompt_ids),
        "logits_std": std,
        **ref,
        "feature_checks": checks,
    }
    if full is not None:
        doc["full_attention"] = full
    doc["llamacpp"] = lcpp
    doc["tokenize"] = {
        "flags": "llama-tokenize -m model-f32.gguf -f FILE --ids --log-disable --no-escape [--no-bos]; special "
                 "tokens are parsed (llama-tokenize's default); FILE holds the exact UTF-8 bytes of text",
        "hf": "AutoTokenizer.from_pretrained(hf/)(text, add_special_tokens=False|True)['input_ids']",
        "pairs": "hf_ids ~ llama_ids (--no-bos); hf_ids_with_special ~ llama_ids_with_bos (BOS where the GGUF says)",
        "gguf_add_bos_token": gguf_add_bos,
        "ran_llama_tokenize": run_llamacpp,
        "disagreements": disagreements,
        "disagreement_notes": DISAGREEMENT_NOTES.get(name, {}),
        "cases": toks,
    }
    if finding_phi3 is not None:
        doc["tokenize"]["rstrip_depends_on_general_name"] = finding_phi3
    doc["chat"] = chat
    doc["llamacpp_semantics"] = LLAMACPP_NOTES[name]
    doc["hf_tensors"] = hf_tensors(hf)
    doc["gguf"] = {"file": "model-f32.gguf", "tensor_shape_order": "GGUF ne order: [ne0 (contiguous, = input width), ne1 (= output rows)]",
                   "metadata": meta, "tensors": tensors, "block0_qk_rows_vs_folder": layout,
                   "converter": f"convert_hf_to_gguf.py hf --outfile model-f32.gguf --outtype f32 --model-name tiny-random-{name}"
                                + (f" (TextModel.get_vocab_base_pre -> {t['pre']!r})" if t["pre"] else "")}
    (out / "ref.json").write_text(dump_json(doc), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    g = ref["greedy"]
    log(f"{name}: {len(prompt_ids)} prompt tokens, logits std {std:.3f}, greedy margins min {min(g['margins']):.2e} "
        f"(ok steps {g['steps_before_first_margin_below_1e-3']}), checks {checks}, tokenizer disagreements "
        f"{disagreements}, llama.cpp {None if lcpp is None else (lcpp['max_abs_diff_last_logits'], lcpp['greedy_equal_up_to_first_small_margin'])}")
    return doc


def chkhsh(tok):
    ids = tok.encode(CHKTXT)
    return hashlib.sha256(str(ids).encode()).hexdigest()


def llama_cpp_version(llama_cpp):
    p = Path(llama_cpp) / "build" / "bin" / "llama-tokenize"
    if not p.exists():
        return None
    r = subprocess.run([str(p), "--version"], capture_output=True, text=True)
    txt = (r.stdout + r.stderr).strip().splitlines()
    return txt[0] if txt else None


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_convert":
        return convert_child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(FAMILIES))
    ap.add_argument("--llama-cpp", type=Path, default=DEFAULT_LLAMA_CPP)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-llamacpp-run", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    names = [n for n in a.only.split(",") if n]
    for n in names:
        if n not in FAMILIES:
            raise SystemExit(f"error: unknown family {n!r}; known: {', '.join(FAMILIES)}")
    run_llamacpp = not a.no_llamacpp_run
    if run_llamacpp and not (a.llama_cpp / "build" / "bin" / "llama-tokenize").exists():
        raise SystemExit(f"error: {a.llama_cpp}/build/bin/llama-tokenize not found: build llama.cpp or pass --no-llamacpp-run")
    exe = build_logits_tool(a.llama_cpp) if run_llamacpp else None
    a.out.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(FAMILIES):
        if n in names:
            make_family(n, FAMILIES[n], a.out, a.llama_cpp, run_llamacpp, exe, SEED + i)


if __name__ == "__main__":
    main()
