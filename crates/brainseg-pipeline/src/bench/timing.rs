//! What both benchmarks measure with and record beside their timings: timed iterations and their
//! median, the machine's load, peak memory, rayon's thread count and the CPU itself.
use crate::{Progress, Result};
use serde::Serialize;
use std::time::Instant;

/// Seconds of each iteration of a timed loop.
pub(crate) struct Timings {
    /// The very first iteration (warm-up or not): compile, autotune and allocate costs show here.
    pub first_s: f64,
    /// The iterations after the warm-up.
    pub seconds: Vec<f64>,
}

impl Timings {
    pub fn median(&self) -> f64 {
        median(&self.seconds)
    }
}

/// Runs `step` `warmup + iters` times, one progress line each (`label`, the iteration, its seconds
/// and the note `step` returns, if any).
pub(crate) fn timed(
    progress: &mut dyn Progress,
    label: &str,
    warmup: usize,
    iters: usize,
    mut step: impl FnMut() -> Result<String>,
) -> Result<Timings> {
    let mut first_s = f64::NAN;
    let mut seconds = Vec::with_capacity(iters);
    for iteration in 0..warmup + iters {
        let started = Instant::now();
        let note = step()?;
        let elapsed = started.elapsed().as_secs_f64();
        let kind = if iteration < warmup {
            "warm-up"
        } else {
            "timed"
        };
        let note = if note.is_empty() {
            note
        } else {
            format!(" ({note})")
        };
        progress.stage(&format!("{label} {kind} {iteration}: {elapsed:.4}s{note}"));
        if iteration == 0 {
            first_s = elapsed;
        }
        if iteration >= warmup {
            seconds.push(elapsed);
        }
    }
    Ok(Timings { first_s, seconds })
}

/// The middle value; the upper one of the two middles for even counts, as torch_unet3d.py takes
/// it (odd counts compare best).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Threads of rayon's global pool as it will start: RAYON_NUM_THREADS, else all cores.
pub(crate) fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// The 1-minute load average (Linux).
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resets VmHWM to the current resident size (Linux 4.0+); false where that is not possible.
pub(crate) fn reset_peak_memory() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak resident memory (VmHWM) in GiB (Linux).
/// Peak resident memory of this process in GiB (Linux VmHWM).
pub fn peak_memory_gib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / (1024.0 * 1024.0))
}

/// The CPU a benchmark ran on: every benchmark names it.
#[derive(Clone, Debug, Serialize)]
pub struct CpuInfo {
    /// /proc/cpuinfo's "model name" ("unknown" where there is none).
    pub cpu: String,
    pub cpu_avx512f: bool,
    pub cpu_avx512_bf16: bool,
    pub cpu_avx2: bool,
    /// The L1 data and L2 caches the kernels' block sizes follow (cpuid), KiB; `None` where cpuid
    /// does not tell (the kernels then assume the sizes they were tuned on).
    pub cpu_l1d_kib: Option<usize>,
    pub cpu_l2_kib: Option<usize>,
}

impl CpuInfo {
    /// This machine's CPU: /proc/cpuinfo on Linux, else what the running process can detect.
    pub fn detect() -> CpuInfo {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let caches = brainseg_model::conv::CacheSizes::read();
        CpuInfo {
            cpu_l1d_kib: caches.map(|c| c.l1d >> 10),
            cpu_l2_kib: caches.map(|c| c.l2 >> 10),
            ..CpuInfo::parse(&cpuinfo)
        }
    }

    fn parse(cpuinfo: &str) -> CpuInfo {
        let field = |name: &str| {
            cpuinfo.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let flags = field("flags").unwrap_or_default();
        let flag = |name: &str| flags.split_whitespace().any(|f| f == name);
        CpuInfo {
            cpu: field("model name").unwrap_or_else(|| "unknown".into()),
            cpu_avx512f: flag("avx512f") || detected::avx512f(),
            cpu_avx512_bf16: flag("avx512_bf16"),
            cpu_avx2: flag("avx2") || detected::avx2(),
            cpu_l1d_kib: None,
            cpu_l2_kib: None,
        }
    }

    /// "model name (avx512f yes, avx512_bf16 no, avx2 yes; L1d 32 KiB, L2 1024 KiB)".
    pub fn describe(&self) -> String {
        let yes = |on: bool| if on { "yes" } else { "no" };
        let caches = match (self.cpu_l1d_kib, self.cpu_l2_kib) {
            (Some(l1d), Some(l2)) => format!("L1d {l1d} KiB, L2 {l2} KiB"),
            _ => "caches unknown, tuned sizes assumed".to_string(),
        };
        format!(
            "{} (avx512f {}, avx512_bf16 {}, avx2 {}; {caches})",
            self.cpu,
            yes(self.cpu_avx512f),
            yes(self.cpu_avx512_bf16),
            yes(self.cpu_avx2),
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod detected {
    pub fn avx512f() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    pub fn avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod detected {
    pub fn avx512f() -> bool {
        false
    }
    pub fn avx2() -> bool {
        false
    }
}

/// "1.2", or "?" for a figure the machine could not give.
pub(crate) fn one_decimal(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.1}"))
        .unwrap_or_else(|| "?".into())
}

/// "1.23", or "?".
pub(crate) fn two_decimals(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_the_upper_middle_as_in_torch_unet3d() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[1.0, 4.0]), 4.0);
    }

    #[test]
    fn cpu_model_and_flags_come_from_cpuinfo() {
        let info = CpuInfo::parse(
            "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nflags\t\t: fpu avx2 avx512f avx512_bf16\n",
        );
        assert_eq!(info.cpu, "Example CPU @ 2.0GHz");
        assert!(info.cpu_avx512f && info.cpu_avx512_bf16 && info.cpu_avx2);
        assert_eq!(CpuInfo::parse("").cpu, "unknown");
    }

    #[test]
    fn timed_keeps_the_first_and_the_timed_iterations() {
        let mut calls = 0;
        let timings = timed(&mut crate::Silent, "test", 2, 3, || {
            calls += 1;
            Ok(String::new())
        })
        .unwrap();
        assert_eq!(calls, 5);
        assert_eq!(timings.seconds.len(), 3);
        assert!(timings.first_s >= 0.0);
    }
}
