//! The CLI's progress reporter: indicatif bars on a terminal, plain lines
//! (no ANSI codes) when `--progress` asks for progress on a redirected stderr.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use normscope::progress::Reporter;

/// Plain lines come at most this often per task (besides its start and end).
const LINE_EVERY: Duration = Duration::from_secs(2);

/// The reporter for stderr: bars when it is a `terminal`, plain lines when
/// `forced` and it is not, `None` when progress should not be shown.
pub fn for_stderr(terminal: bool, forced: bool) -> Option<Box<dyn Reporter>> {
    if terminal {
        Some(Box::new(Bars::default()))
    } else if forced {
        Some(Box::new(Lines::default()))
    } else {
        None
    }
}

/// indicatif bars, one per task, stacked.
#[derive(Default)]
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<u64, ProgressBar>>,
}

impl Reporter for Bars {
    fn note(&self, msg: &str) {
        let _ = self.multi.println(msg);
    }

    fn start(&self, id: u64, what: &str, total: u64, unit: &str) {
        let template = if total > 0 {
            format!("{{msg}} {{bar:30}} {{pos}}/{{len}} {unit} ({{per_sec}}) [{{elapsed_precise}} < {{eta_precise}}]")
        } else {
            format!("{{msg}} {{pos}} {unit} ({{per_sec}}) [{{elapsed_precise}}]")
        };
        let style = ProgressStyle::with_template(&template).expect("progress template is valid");
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_message(what.to_string());
        let bar = self.multi.add(bar);
        lock(&self.bars).insert(id, bar);
    }

    fn update(&self, id: u64, done: u64) {
        if let Some(bar) = lock(&self.bars).get(&id) {
            bar.set_position(done);
        }
    }

    fn finish(&self, id: u64) {
        if let Some(bar) = lock(&self.bars).remove(&id) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }
}

/// One task's state for plain lines.
struct LineTask {
    what: String,
    total: u64,
    unit: String,
    started: Instant,
    last_line: Instant,
    done: u64,
    /// `done` as the last line showed it.
    shown: Option<u64>,
}

impl LineTask {
    /// Prints the task's line, unless it would repeat the last one.
    fn show(&mut self) {
        if self.shown != Some(self.done) {
            self.shown = Some(self.done);
            self.last_line = Instant::now();
            super::out::eprintln(self.line());
        }
    }

    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        };
        let of = if self.total > 0 {
            format!("/{}", self.total)
        } else {
            String::new()
        };
        format!(
            "{}: {}{of} {} ({rate:.1} {}/s, {secs:.1}s)",
            self.what, self.done, self.unit, self.unit
        )
    }
}

/// Plain progress lines on stderr.
#[derive(Default)]
struct Lines {
    tasks: Mutex<HashMap<u64, LineTask>>,
}

impl Reporter for Lines {
    fn note(&self, msg: &str) {
        super::out::eprintln(msg);
    }

    fn start(&self, id: u64, what: &str, total: u64, unit: &str) {
        let now = Instant::now();
        let mut task = LineTask {
            what: what.to_string(),
            total,
            unit: unit.to_string(),
            started: now,
            last_line: now,
            done: 0,
            shown: None,
        };
        task.show();
        lock(&self.tasks).insert(id, task);
    }

    fn update(&self, id: u64, done: u64) {
        if let Some(task) = lock(&self.tasks).get_mut(&id) {
            task.done = done;
            if task.last_line.elapsed() >= LINE_EVERY {
                task.show();
            }
        }
    }

    fn finish(&self, id: u64) {
        if let Some(mut task) = lock(&self.tasks).remove(&id) {
            task.show();
        }
    }
}

/// Locks `m`, carrying on after a panic elsewhere (progress is never worth a second one).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
