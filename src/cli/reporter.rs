//! The CLI's progress reporter: indicatif bars on a terminal, plain lines
//! (no ANSI codes) when `--progress` asks for progress on a redirected stderr.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
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
            format!("{{msg}} {{bar:30}} {{pos}}/{{len}} {unit} ({{speed}}) [{{elapsed_precise}} < {{eta_precise}}]")
        } else {
            format!("{{msg}} {{pos}} {unit} ({{speed}}) [{{elapsed_precise}}]")
        };
        let unit_name = unit.to_string();
        let style = ProgressStyle::with_template(&template)
            .expect("progress template is valid")
            .with_key(
                "speed",
                move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&speed(s.pos(), s.elapsed().as_secs_f64(), &unit_name));
                },
            );
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
        line(
            &self.what,
            self.done,
            self.total,
            &self.unit,
            self.started.elapsed().as_secs_f64(),
        )
    }
}

/// A plain progress line: `what: done/total unit (speed, time so far, time
/// left)`; the time left needs a total and a step done.
fn line(what: &str, done: u64, total: u64, unit: &str, secs: f64) -> String {
    let speed = speed(done, secs, unit);
    if total == 0 {
        return format!("{what}: {done} {unit} ({speed}, {secs:.1}s)");
    }
    let left = if done > 0 && done < total {
        let left = secs / done as f64 * (total - done) as f64;
        format!(", about {} left", duration(left))
    } else {
        String::new()
    };
    format!("{what}: {done}/{total} {unit} ({speed}, {secs:.1}s{left})")
}

/// How fast a task goes: steps per second, or seconds per step when a step
/// takes longer than a second (`0.0 windows/s` says nothing).
fn speed(done: u64, secs: f64, unit: &str) -> String {
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    if done > 0 && rate < 1.0 {
        format!("{:.1} s each", secs / done as f64)
    } else {
        format!("{rate:.1} {unit}/s")
    }
}

/// `42s`, `3m 05s`, `1h 02m`.
fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_steps_show_seconds_each_and_the_time_left() {
        let l = line("analyze", 2, 8, "windows", 50.0);
        assert_eq!(
            l,
            "analyze: 2/8 windows (25.0 s each, 50.0s, about 2m 30s left)"
        );
        let l = line("prefill", 512, 1024, "tokens", 2.0);
        assert_eq!(
            l,
            "prefill: 512/1024 tokens (256.0 tokens/s, 2.0s, about 2s left)"
        );
        assert_eq!(
            line("analyze", 8, 8, "windows", 4.0),
            "analyze: 8/8 windows (2.0 windows/s, 4.0s)"
        );
        assert_eq!(
            line("fetch", 3, 0, "parts", 1.5),
            "fetch: 3 parts (2.0 parts/s, 1.5s)"
        );
        assert_eq!(duration(3725.0), "1h 02m");
    }
}
