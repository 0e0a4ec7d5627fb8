//! Bench results as records (llama-bench's JSON field names where it has
//! them, plus ours) and as a llama-bench-style markdown table.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::runner::{Measurement, Test};
use super::size::ModelStats;

/// Facts about the benchmarked model and machine, shared by its records.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The file or folder (or `random:CONFIG`).
    pub filename: String,
    /// Its architecture as a GGUF names it (`llama`, `qwen2`, ...), which
    /// starts the `model_type` label as llama-bench's does.
    pub arch: &'static str,
    /// A GGUF's `general.file_type` (llama.cpp's `LLAMA_FTYPE`), when it has one.
    pub file_type: Option<u32>,
    /// Size figures.
    pub stats: ModelStats,
    /// `safetensors`, `gguf` or `random`.
    pub source: String,
    /// The in-situ quantization asked for (`q8_0`, ...), if any.
    pub quantize: Option<String>,
    /// Compute dtype (`f32`, `f16`, `bf16`).
    pub dtype: String,
    /// `cpu`, `cuda:0`, `metal:0`.
    pub device: String,
    /// `CPU`, `CUDA` or `Metal`.
    pub backends: String,
    /// CPU threads.
    pub n_threads: usize,
    /// Milliseconds to load (and quantize) the model.
    pub load_ms: f64,
    /// Peak resident bytes while loading.
    pub load_peak_rss_bytes: Option<u64>,
}

/// One test's figures. The field names up to `samples_ts` are llama-bench's.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// The model file or folder.
    pub model_filename: String,
    /// `llama 135M Q4_K - Medium`: size class and llama.cpp's name of the
    /// GGUF's file type, or the most frequent linear-map format without one.
    pub model_type: String,
    /// Bytes of weights as held in memory.
    pub model_size: u64,
    /// Parameter count.
    pub model_n_params: u64,
    /// `CPU`, `CUDA` or `Metal`.
    pub backends: String,
    /// CPU threads.
    pub n_threads: usize,
    /// Prompt tokens (prompt tests; else 0).
    pub n_prompt: usize,
    /// Generated tokens (generation tests; else 0).
    pub n_gen: usize,
    /// When the timed runs began (RFC 3339, UTC).
    pub test_time: String,
    /// Mean nanoseconds per run.
    pub avg_ns: u64,
    /// Standard deviation of the nanoseconds per run.
    pub stddev_ns: u64,
    /// Mean tokens/sec over runs.
    pub avg_ts: f64,
    /// Standard deviation of tokens/sec over runs.
    pub stddev_ts: f64,
    /// Nanoseconds of each run.
    pub samples_ns: Vec<u64>,
    /// Tokens/sec of each run.
    pub samples_ts: Vec<f64>,
    /// `pp512`, `tg128`.
    pub test: String,
    /// Storage format of the linear maps (`Q4_1`, `F32`, `Q5_0+Q4_K`).
    pub format: String,
    /// `safetensors`, `gguf` or `random`.
    pub source: String,
    /// In-situ quantization asked for, if any.
    pub quantize: Option<String>,
    /// Compute dtype.
    pub dtype: String,
    /// `cpu`, `cuda:0`, ...
    pub device: String,
    /// Generation tests: weight bytes read per token x tokens/sec, in GB/s.
    pub gb_per_s: Option<f64>,
    /// Weight bytes one decode step reads.
    pub bytes_per_token: u64,
    /// Prompt tests: mean milliseconds from the start of prefill to the first token id.
    pub ttft_ms: Option<f64>,
    /// Milliseconds to load (and quantize) the model.
    pub load_ms: f64,
    /// Peak resident bytes from the end of loading through this test.
    pub peak_rss_bytes: Option<u64>,
    /// Peak resident bytes while loading.
    pub load_peak_rss_bytes: Option<u64>,
    /// Bytes the KV cache held at the end of a run (compare with the peak
    /// resident memory beside the file size).
    pub kv_cache_bytes: u64,
    /// The machine's memory-read bandwidth in GB/s, when probed (`--mem-bw`).
    pub mem_read_gb_per_s: Option<f64>,
}

impl Record {
    /// The record of measurement `m`.
    pub fn new(info: &ModelInfo, m: &Measurement, peak_rss_bytes: Option<u64>) -> Self {
        let tokens = m.test.tokens() as f64;
        let samples_ts: Vec<f64> = m
            .samples_ns
            .iter()
            .map(|&ns| tokens * 1e9 / ns.max(1) as f64)
            .collect();
        let ns: Vec<f64> = m.samples_ns.iter().map(|&n| n as f64).collect();
        let (avg_ts, stddev_ts) = mean_std(&samples_ts);
        let (avg_ns, stddev_ns) = mean_std(&ns);
        let s = &info.stats;
        let (n_prompt, n_gen) = match m.test {
            Test::Prompt(n) => (n, 0),
            Test::Generate(n) => (0, n),
        };
        let first: Vec<f64> = m.first_token_ns.iter().map(|&n| n as f64 / 1e6).collect();
        Record {
            model_filename: info.filename.clone(),
            model_type: format!(
                "{} {} {}",
                info.arch,
                params_label(s.n_params),
                info.file_type.and_then(file_type_name).unwrap_or_else(|| s
                    .format
                    .split('+')
                    .next()
                    .unwrap_or_default()
                    .into())
            ),
            model_size: s.size_bytes,
            model_n_params: s.n_params,
            backends: info.backends.clone(),
            n_threads: info.n_threads,
            n_prompt,
            n_gen,
            test_time: rfc3339(m.started),
            avg_ns: avg_ns.round() as u64,
            stddev_ns: stddev_ns.round() as u64,
            avg_ts,
            stddev_ts,
            samples_ns: m.samples_ns.clone(),
            samples_ts,
            test: m.test.name(),
            format: s.format.clone(),
            source: info.source.clone(),
            quantize: info.quantize.clone(),
            dtype: info.dtype.clone(),
            device: info.device.clone(),
            gb_per_s: (n_gen > 0).then(|| s.bytes_per_token as f64 * avg_ts / 1e9),
            bytes_per_token: s.bytes_per_token,
            ttft_ms: (!first.is_empty()).then(|| mean_std(&first).0),
            load_ms: info.load_ms,
            peak_rss_bytes,
            load_peak_rss_bytes: info.load_peak_rss_bytes,
            kv_cache_bytes: m.kv_cache_bytes,
            mem_read_gb_per_s: None,
        }
    }
}

/// llama.cpp's name of a `general.file_type` (its `llama_model_ftype_name`),
/// for the file types normscope runs.
pub fn file_type_name(ftype: u32) -> Option<String> {
    /// The flag llama.cpp sets on a file type it guessed from the tensors.
    const GUESSED: u32 = 1024;
    if ftype & GUESSED != 0 {
        return file_type_name(ftype & !GUESSED).map(|n| format!("{n} (guessed)"));
    }
    let name = match ftype {
        0 => "all F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K - Medium",
        11 => "Q3_K - Small",
        12 => "Q3_K - Medium",
        13 => "Q3_K - Large",
        14 => "Q4_K - Small",
        15 => "Q4_K - Medium",
        16 => "Q5_K - Small",
        17 => "Q5_K - Medium",
        18 => "Q6_K",
        21 => "Q2_K - Small",
        32 => "BF16",
        _ => return None,
    };
    Some(name.to_string())
}

/// Mean and sample standard deviation (0 for fewer than two values).
fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// `135M`, `1.2B`, `90K`.
fn params_label(n: u64) -> String {
    match n {
        1_000_000_000.. => format!("{:.1}B", n as f64 / 1e9),
        1_000_000.. => format!("{:.0}M", n as f64 / 1e6),
        _ => format!("{:.0}K", n as f64 / 1e3),
    }
}

/// `86.29 MiB`, `1.20 GiB`.
fn bytes_label(b: u64) -> String {
    let mib = b as f64 / (1u64 << 20) as f64;
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.2} MiB")
    }
}

/// One `model: FILE (source format, size)` line per file the records measured,
/// to show above their table.
pub fn model_lines(records: &[Record]) -> String {
    let mut models: Vec<String> = Vec::new();
    for r in records {
        let line = format!(
            "model: {} ({} {}, {})\n",
            r.model_filename,
            r.source,
            r.format,
            bytes_label(r.model_size)
        );
        if !models.contains(&line) {
            models.push(line);
        }
    }
    models.concat()
}

/// The records as a markdown table (llama-bench's columns plus format and
/// GB/s; a first `file` column when they come from several files), followed
/// by each file's load time, peak memory and time to first token.
pub fn markdown(records: &[Record]) -> String {
    let files = files(records);
    // With several files, a first column says which file each row measured.
    let labelled = files.len() > 1;
    let mut head = vec![
        "model", "format", "size", "params", "device", "threads", "test", "t/s", "GB/s",
    ];
    let mut right = vec![false, false, true, true, false, true, true, true, true];
    if labelled {
        head.insert(0, "file");
        right.insert(0, false);
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let mut row = vec![
                r.model_type.clone(),
                r.format.clone(),
                bytes_label(r.model_size),
                format!("{:.2} M", r.model_n_params as f64 / 1e6),
                r.device.clone(),
                r.n_threads.to_string(),
                r.test.clone(),
                format!("{:.2} ± {:.2}", r.avg_ts, r.stddev_ts),
                r.gb_per_s.map_or(String::new(), |g| format!("{g:.2}")),
            ];
            if labelled {
                row.insert(0, file_label(&r.model_filename));
            }
            row
        })
        .collect();
    let widths: Vec<usize> = (0..head.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([head[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&right)
            .map(|((c, &w), &r)| {
                if r {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let head: Vec<String> = head.into_iter().map(String::from).collect();
    let mut out = line(&head);
    let rules: Vec<String> = widths
        .iter()
        .zip(&right)
        .map(|(&w, &r)| {
            if r {
                format!("{}:", "-".repeat(w - 1))
            } else {
                "-".repeat(w)
            }
        })
        .collect();
    out += &line(&rules);
    for r in &rows {
        out += &line(r);
    }
    out.push('\n');
    for f in &files {
        let mine: Vec<&Record> = records.iter().filter(|r| &r.model_filename == f).collect();
        if labelled {
            out += &format!("{}: ", file_label(f));
        }
        out += &footer(&mine);
    }
    if let Some(bw) = records.first().and_then(|r| r.mem_read_gb_per_s) {
        out += &format!("memory read bandwidth: {bw:.2} GB/s");
        for r in records {
            if let Some(g) = r.gb_per_s {
                out += &format!(" | {}: {:.0}% of it", r.test, 100.0 * g / bw);
            }
        }
        out.push('\n');
    }
    out
}

/// The distinct model files of `records`, in order of appearance.
fn files(records: &[Record]) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for r in records {
        if !files.contains(&r.model_filename) {
            files.push(r.model_filename.clone());
        }
    }
    files
}

/// A file's name without its folder (`random:CONFIG` stays whole).
fn file_label(path: &str) -> String {
    if path.starts_with("random:") {
        return path.to_string();
    }
    std::path::Path::new(path)
        .file_name()
        .map_or(path.to_string(), |n| n.to_string_lossy().into_owned())
}

/// One file's load time, peak resident memory and times to first token.
fn footer(records: &[&Record]) -> String {
    let Some(first) = records.first() else {
        return String::new();
    };
    let mut out = format!("load: {:.0} ms", first.load_ms);
    let peak = records.iter().filter_map(|r| r.peak_rss_bytes).max();
    if let Some(p) = peak {
        out += &format!(" | peak RSS after load: {}", bytes_label(p));
    }
    if let Some(p) = first.load_peak_rss_bytes {
        out += &format!(" | peak RSS while loading: {}", bytes_label(p));
    }
    for r in records.iter().filter(|r| r.ttft_ms.is_some()) {
        out += &format!(
            " | ttft {}: {:.1} ms",
            r.test,
            r.ttft_ms.unwrap_or_default()
        );
    }
    out + "\n"
}

/// `2025-01-31T12:34:56Z`.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates_labels_and_statistics() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // a leap day
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
        assert_eq!(params_label(134_515_008), "135M");
        assert_eq!(params_label(1_235_814_400), "1.2B");
        assert_eq!(params_label(90_432), "90K");
        assert_eq!(bytes_label(90 << 20), "90.00 MiB");
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    }
}
