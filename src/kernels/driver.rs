//! Splits a matrix product into tasks of whole row groups on the kernel team.

use std::ops::Range;
use std::sync::{Mutex, OnceLock};

use super::cache;
use super::formats::GROUP;
use super::team;

/// A format's kernel on one instruction set, with its activations prepared.
pub(crate) trait GroupKernel: Sync {
    /// Fills `outs[a][GROUP * i + r] = dot(row GROUP * (g0 + i) + r, act a)`
    /// for the groups `g0..g1` of `groups` and every activation row `a`
    /// (`outs[a]` may end inside the last group: rows past it are dropped).
    fn chunk(&self, groups: Range<usize>, outs: &mut [&mut [f32]]);
}

/// Computes `out (m x rows)` with `k`, splitting row groups of `group_bytes`
/// bytes of weights into tasks.
pub(crate) fn run<K: GroupKernel>(
    k: &K,
    rows: usize,
    m: usize,
    group_bytes: usize,
    out: &mut [f32],
) {
    if rows == 0 || m == 0 {
        return;
    }
    let groups = rows.div_ceil(GROUP);
    let per_task = groups_per_task(groups, m, group_bytes);
    let chunk = per_task * GROUP;
    // Task t gets, for every activation row, the output columns of its groups.
    let n_tasks = groups.div_ceil(per_task);
    let mut tasks: Vec<Vec<&mut [f32]>> = (0..n_tasks).map(|_| Vec::with_capacity(m)).collect();
    for out_row in out.chunks_mut(rows) {
        for (task, part) in tasks.iter_mut().zip(out_row.chunks_mut(chunk)) {
            task.push(part);
        }
    }
    // Each task locks only its own slot (never contended).
    let tasks: Vec<Mutex<Vec<&mut [f32]>>> = tasks.into_iter().map(Mutex::new).collect();
    team::parallel_for(n_tasks, |t| {
        let mut outs = tasks[t].lock().unwrap_or_else(|p| p.into_inner());
        let g0 = t * per_task;
        k.chunk(g0..(g0 + per_task).min(groups), &mut outs);
    });
}

/// Groups per task: for decode, a few balanced tasks per thread (the weights
/// stream once); for m > 1, a weight tile of [`prefill_tile_bytes`] (at least
/// 4 groups) that stays in L2 while every activation row passes over it,
/// with the task count a multiple of the thread count where tiles allow.
fn groups_per_task(groups: usize, m: usize, group_bytes: usize) -> usize {
    let threads = team::threads();
    let n_tasks = if m == 1 {
        let n = (groups / 8).clamp(1, 4 * threads);
        if n > threads {
            n / threads * threads
        } else {
            n
        }
    } else {
        // At least 4 groups, so that dense tiles can span 4 groups.
        let per_chunk = (prefill_tile_bytes() / group_bytes.max(1)).max(4);
        let n = groups.div_ceil(per_chunk).max(threads.min(groups));
        n.div_ceil(threads) * threads
    };
    groups.div_ceil(n_tasks.min(groups))
}

/// Weight bytes per prefill task: a quarter of the L2 cache the CPU
/// reports (the rest holds the activation tile, the outputs and the next
/// tile's first lines), or 64 KiB where it reports none.
fn prefill_tile_bytes() -> usize {
    static TILE: OnceLock<usize> = OnceLock::new();
    *TILE.get_or_init(|| cache::l2_bytes().map_or(64 * 1024, |l2| (l2 / 4).max(64 * 1024)))
}
