//! A small team of spinning worker threads for the kernels' parallel loops.
//!
//! Decode runs ~200 short matrix products per token; handing each one to
//! rayon's pool from the main thread costs a futex wake-up and a sleep per
//! product (measured: ~20% of decode time in the scheduler). Here the caller
//! works on the job itself while `threads - 1` workers, which spin for a
//! short while between jobs before parking, claim task indices from one
//! atomic word. The thread count is rayon's (`RAYON_NUM_THREADS`, which
//! `--threads` sets), read once.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, TryLockError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks.
const SPIN: Duration = Duration::from_micros(300);

/// One parallel loop's task body and progress (its task count is in `state`).
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
    /// The first panic of a task, re-raised by the caller once all are done
    /// (a task must not unwind past the frame that owns the job).
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// Tasks finished.
    done: AtomicUsize,
}

/// The shared state. `state` packs `generation (32 bits) | n (16) | next (16)`:
/// a worker claims task `next` of the current generation with one
/// compare-and-swap, so it never runs a task of a job that has ended.
struct Team {
    state: AtomicU64,
    job: AtomicPtr<Job<'static>>,
    /// Handles of the worker threads, set once they are spawned.
    workers: OnceLock<Vec<Thread>>,
    /// Workers currently parked (the caller unparks them only when needed).
    parked: AtomicUsize,
    /// One job at a time; a second concurrent caller runs its loop alone.
    submit: Mutex<()>,
}

/// Most tasks one job may have (the `n` field is 16 bits wide).
const MAX_TASKS: usize = u16::MAX as usize;

fn pack(generation: u64, n: usize, next: usize) -> u64 {
    (generation << 32) | ((n as u64) << 16) | next as u64
}

fn unpack(s: u64) -> (u64, usize, usize) {
    (
        s >> 32,
        ((s >> 16) & 0xFFFF) as usize,
        (s & 0xFFFF) as usize,
    )
}

impl Team {
    fn get() -> &'static Team {
        static TEAM: OnceLock<&'static Team> = OnceLock::new();
        TEAM.get_or_init(|| {
            let threads = rayon::current_num_threads().max(1);
            let team: &'static Team = Box::leak(Box::new(Team {
                state: AtomicU64::new(0),
                job: AtomicPtr::new(std::ptr::null_mut()),
                workers: OnceLock::new(),
                parked: AtomicUsize::new(0),
                submit: Mutex::new(()),
            }));
            let workers: Vec<Thread> = (1..threads)
                .filter_map(|i| {
                    thread::Builder::new()
                        .name(format!("normscope-kernel-{i}"))
                        .spawn(move || team.work())
                        .ok()
                        .map(|h| h.thread().clone())
                })
                .collect();
            team.workers.get_or_init(|| workers);
            team
        })
    }

    fn workers(&self) -> &[Thread] {
        self.workers.get().map_or(&[], Vec::as_slice)
    }

    /// Claims and runs tasks of the current generation until none are left.
    fn help(&self, generation: u64) {
        loop {
            let s = self.state.load(Ordering::Acquire);
            let (g, n, next) = unpack(s);
            if g != generation || next >= n {
                return;
            }
            let job = self.job.load(Ordering::Acquire);
            if self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            // SAFETY: task `next < n` of generation `g` was unclaimed, so the
            // job has not ended (its caller waits for every task), and `job`
            // was published before the generation it belongs to.
            let job = unsafe { &*job };
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| (job.f)(next))) {
                job.panic
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(payload);
            }
            job.done.fetch_add(1, Ordering::Release);
        }
    }

    /// A worker's loop: wait for a new generation, help, repeat.
    fn work(&self) {
        let mut seen = 0u64;
        loop {
            let mut idle_since = None;
            let generation = loop {
                let (g, n, next) = unpack(self.state.load(Ordering::Acquire));
                if g != seen && next < n {
                    break g;
                }
                if g != seen {
                    seen = g; // a job we missed entirely
                }
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() < SPIN {
                    for _ in 0..64 {
                        std::hint::spin_loop();
                    }
                } else {
                    self.parked.fetch_add(1, Ordering::SeqCst);
                    let (g, n, next) = unpack(self.state.load(Ordering::SeqCst));
                    if !(g != seen && next < n) {
                        thread::park_timeout(Duration::from_millis(50));
                    }
                    self.parked.fetch_sub(1, Ordering::SeqCst);
                    idle_since = None;
                }
            };
            seen = generation;
            self.help(generation);
        }
    }

    fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        let job = Job {
            f,
            panic: Mutex::new(None),
            done: AtomicUsize::new(0),
        };
        let generation = unpack(self.state.load(Ordering::Acquire)).0 + 1;
        // SAFETY: the pointer is only dereferenced by a worker that claimed a
        // task of this generation, and this function returns only after every
        // task has finished, so `job` outlives each use.
        let ptr = &job as *const Job<'_> as *mut Job<'static>;
        self.job.store(ptr, Ordering::Release);
        self.state
            .store(pack(generation & 0xFFFF_FFFF, n, 0), Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) > 0 {
            for w in self.workers() {
                w.unpark();
            }
        }
        self.help(generation & 0xFFFF_FFFF);
        while job.done.load(Ordering::Acquire) < n {
            std::hint::spin_loop();
        }
        if let Some(payload) = job.panic.into_inner().unwrap_or_else(|p| p.into_inner()) {
            panic::resume_unwind(payload);
        }
    }
}

/// Runs `f(0)..f(n - 1)` on the kernel team (the caller takes part) and
/// returns when all have finished. Runs them in order on the calling thread
/// when there is one thread, one task, or another loop is in flight. Either
/// way every task runs, and the first task that panicked re-raises its panic
/// in the caller afterwards.
pub(crate) fn parallel_for(n: usize, f: impl Fn(usize) + Sync) {
    let serial = |f: &dyn Fn(usize)| {
        let mut first = None;
        for i in 0..n {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| f(i))) {
                first.get_or_insert(payload);
            }
        }
        if let Some(payload) = first {
            panic::resume_unwind(payload);
        }
    };
    if n <= 1 || n > MAX_TASKS {
        return serial(&f);
    }
    let team = Team::get();
    if team.workers().is_empty() {
        return serial(&f);
    }
    match team.submit.try_lock() {
        Ok(_guard) => team.run(n, &f),
        Err(TryLockError::WouldBlock) => serial(&f),
        Err(TryLockError::Poisoned(p)) => {
            let _guard = p.into_inner();
            team.run(n, &f)
        }
    }
}

/// Threads the team uses (the caller included).
pub(crate) fn threads() -> usize {
    Team::get().workers().len() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once() {
        for n in [0, 1, 2, 3, 17, 1000] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..50 {
                parallel_for(n, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 50),
                "n = {n}"
            );
        }
    }

    #[test]
    fn a_panicking_task_reaches_the_caller_after_the_others_finish() {
        let done = AtomicUsize::new(0);
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            parallel_for(8, |i| {
                assert_ne!(i, 3, "task 3 fails");
                done.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(r.is_err());
        assert_eq!(done.load(Ordering::Relaxed), 7);
        // The team still works afterwards.
        let sum = AtomicUsize::new(0);
        parallel_for(4, |i| {
            sum.fetch_add(i, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn concurrent_callers_each_get_their_tasks() {
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let sum = AtomicUsize::new(0);
                        parallel_for(10, |i| {
                            sum.fetch_add(i, Ordering::Relaxed);
                        });
                        assert_eq!(sum.load(Ordering::Relaxed), 45);
                    }
                });
            }
        });
    }
}
