//! Memory figures: peak resident set size from `/proc/self/status` (Linux),
//! and a probe of the machine's memory-read bandwidth.

use std::time::Instant;

/// Peak resident set size in bytes (`VmHWM`), or `None` where `/proc` is missing.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Peak resident set size in MiB (`VmHWM`), 0 where `/proc` is missing.
pub fn peak_rss_mib() -> f64 {
    peak_rss_bytes().map_or(0.0, |b| b as f64 / (1u64 << 20) as f64)
}

/// Resets the peak resident set size to the current one (Linux: writes `5`
/// to `/proc/self/clear_refs`); false when that is not possible. Memory
/// that mimalloc (the binary's allocator) still holds from loading is given
/// back first, so the new peak starts from what the model really keeps.
pub fn reset_peak_rss() -> bool {
    // SAFETY: mi_collect only walks mimalloc's own heaps; it is a no-op
    // where nothing was allocated through them.
    unsafe { libmimalloc_sys::mi_collect(true) };
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Memory-read bandwidth in GB/s (1e9 bytes/s): `threads` threads sum
/// disjoint parts of a `bytes`-byte buffer (pick one far larger than the
/// caches); the best of `passes` passes counts.
pub fn read_bandwidth_gb_per_s(bytes: usize, threads: usize, passes: usize) -> f64 {
    let words = (bytes / 8).max(1);
    let buf: Vec<u64> = (0..words as u64).collect(); // written, so every page is resident
    let part = words.div_ceil(threads.max(1));
    let mut best = f64::INFINITY;
    for _ in 0..passes.max(1) {
        let started = Instant::now();
        let total = std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(part)
                .map(|chunk| s.spawn(move || sum_words(chunk)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("bandwidth probe thread panicked"))
                .fold(0u64, u64::wrapping_add)
        });
        std::hint::black_box(total);
        best = best.min(started.elapsed().as_secs_f64());
    }
    (words * 8) as f64 / best / 1e9
}

/// Wrapping sum over eight independent lanes, which the compiler turns into
/// vector adds.
fn sum_words(chunk: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    let mut blocks = chunk.chunks_exact(8);
    for block in &mut blocks {
        for (lane, &w) in lanes.iter_mut().zip(block) {
            *lane = lane.wrapping_add(w);
        }
    }
    let tail = blocks
        .remainder()
        .iter()
        .fold(0u64, |a, &w| a.wrapping_add(w));
    lanes.iter().fold(tail, |a, &w| a.wrapping_add(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_word_and_reads_proc() {
        let v: Vec<u64> = (0..1003).collect();
        assert_eq!(sum_words(&v), 1002 * 1003 / 2);
        assert!(read_bandwidth_gb_per_s(1 << 20, 2, 2) > 0.0);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().unwrap() > 1 << 20);
            assert_eq!(peak_rss_mib(), peak_rss_bytes().unwrap() as f64 / 1048576.0);
            assert!(status_kib("VmRSS:").unwrap() > 0);
        }
    }
}
