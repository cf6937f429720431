//! The figures of a run: one row per workload, the table and the JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// The simulator's burst (B) and rate (R) of `BENCHMARKS.md`.
pub const BURST: f64 = 20.0;
/// Requests per second per site.
pub const RATE: f64 = 20.0;
/// Latency per request.
pub const LATENCY_MS: f64 = 30.0;

/// `T_floor = max(C_min - B, 0) / R + latency of the longest unavoidable chain`.
pub fn t_floor(c_min: u64, chain_ms: f64) -> f64 {
    (c_min as f64 - BURST).max(0.0) / RATE + chain_ms / 1000.0
}

/// What the user-written script (PyPI `jira`) did for the same workload.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    /// Wall time in seconds.
    pub time_s: f64,
    /// Requests the simulator counted.
    pub calls: u64,
    /// Share answered 429, percent.
    pub rate_limited_pct: f64,
    /// Items missing afterwards.
    pub lost: u64,
    /// Items present more than once.
    pub duplicated: u64,
    /// Baseline time / ours.
    pub time_ratio: Option<f64>,
    /// Baseline calls / ours.
    pub calls_ratio: Option<f64>,
}

/// One workload's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    /// `W1` … `W7`.
    pub id: String,
    /// What it does, with its size.
    pub what: String,
    /// Items of work.
    pub items: u64,
    /// Fewest calls Jira's API allows.
    pub c_min: Option<u64>,
    /// Calls the simulator counted.
    pub calls: Option<u64>,
    /// The floor in seconds.
    pub t_floor_s: Option<f64>,
    /// Wall time in seconds.
    pub time_s: Option<f64>,
    /// `time / T_floor`.
    pub time_over_floor: Option<f64>,
    /// Share of calls answered 429, percent.
    pub rate_limited_pct: Option<f64>,
    /// Items that did not arrive.
    pub lost: Option<u64>,
    /// Items that arrived more than once.
    pub duplicated: Option<u64>,
    /// Items the service reported as failed.
    pub failed: Option<u64>,
    /// Workload-specific figures (W5–W7, extra timings).
    pub figures: BTreeMap<String, f64>,
    /// The goal of `BENCHMARKS.md`.
    pub goal: String,
    /// Whether every part of the goal was met.
    pub met: Option<bool>,
    /// The parts of the goal that were missed.
    pub missed: Vec<String>,
    /// Calls by endpoint, and other remarks.
    pub notes: Vec<String>,
    /// The PyPI `jira` script on the same workload (W1–W4).
    pub baseline: Option<Baseline>,
    /// Set when the workload could not run.
    pub error: Option<String>,
}

impl Row {
    /// A row with its id, description and goal.
    pub fn new(id: &str, what: impl Into<String>, goal: &str) -> Self {
        Row {
            id: id.into(),
            what: what.into(),
            goal: goal.into(),
            ..Row::default()
        }
    }

    /// Fill in calls and 429s, and the floor from `c_min` and the chain.
    pub fn calls(&mut self, c_min: u64, chain_ms: f64, calls: &super::procs::Calls) {
        self.c_min = Some(c_min);
        self.calls = Some(calls.total);
        self.rate_limited_pct = Some(calls.rate_limited_pct());
        self.t_floor_s = Some(t_floor(c_min, chain_ms));
        self.notes.push(format!("calls: {}", calls.breakdown()));
    }

    /// Record the wall time (and the ratio to the floor).
    pub fn time(&mut self, secs: f64) {
        self.time_s = Some(secs);
        if let Some(f) = self.t_floor_s.filter(|f| *f > 0.0) {
            self.time_over_floor = Some(secs / f);
        }
    }

    /// Check one part of the goal.
    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.missed.push(what.into());
        }
        self.met = Some(self.met.unwrap_or(true) && ok);
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Tiny sizes (CI).
    pub smoke: bool,
    /// Where it ran.
    pub machine: BTreeMap<String, String>,
    /// The simulator pacing.
    pub pacing: serde_json::Value,
    /// Whether the baseline ran, or why not.
    pub baseline: String,
    /// One row per workload run.
    pub workloads: Vec<Row>,
    /// Total wall time of the command in seconds.
    pub total_s: f64,
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

/// The text table.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<4} {:>7} {:>7} {:>9} {:>9} {:>8} {:>7} {:>5} {:>5}  {:<4} figures",
        "wl", "C_min", "calls", "T_floor", "time", "t/floor", "429 %", "lost", "dup", "goal"
    );
    for w in &r.workloads {
        let mut figures: Vec<String> = w
            .figures
            .iter()
            .map(|(k, v)| format!("{k}={}", trim(*v)))
            .collect();
        if let Some(b) = &w.baseline {
            figures.push(format!(
                "baseline: time {:.2}s ({}x ours), calls {} ({}x ours), 429 {:.1}%, lost {}, dup {}",
                b.time_s,
                b.time_ratio.map_or("-".into(), |x| format!("{x:.1}")),
                b.calls,
                b.calls_ratio.map_or("-".into(), |x| format!("{x:.1}")),
                b.rate_limited_pct,
                b.lost,
                b.duplicated
            ));
        }
        if let Some(e) = &w.error {
            figures.push(format!("ERROR: {e}"));
        }
        let _ = writeln!(
            out,
            "{:<4} {:>7} {:>7} {:>9} {:>9} {:>8} {:>7} {:>5} {:>5}  {:<4} {}",
            w.id,
            opt(w.c_min),
            opt(w.calls),
            secs(w.t_floor_s),
            secs(w.time_s),
            w.time_over_floor
                .map_or_else(|| "-".into(), |v| format!("{v:.2}")),
            w.rate_limited_pct
                .map_or_else(|| "-".into(), |v| format!("{v:.1}")),
            opt(w.lost),
            opt(w.duplicated),
            match w.met {
                Some(true) => "met",
                Some(false) => "MISS",
                None => "-",
            },
            figures.join("  ")
        );
    }
    let _ = writeln!(out);
    for w in &r.workloads {
        let _ = writeln!(out, "{}: {} (goal: {})", w.id, w.what, w.goal);
        for m in &w.missed {
            let _ = writeln!(out, "    missed: {m}");
        }
        for n in &w.notes {
            let _ = writeln!(out, "    {n}");
        }
    }
    let _ = writeln!(out, "baseline: {}", r.baseline);
    let _ = writeln!(
        out,
        "machine: {}",
        r.machine
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(out, "total: {:.1} s", r.total_s);
    out
}

fn trim(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e12) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Where the run happened: CPUs, load, kernel, memory.
pub fn machine() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert(
        "cpus".into(),
        std::thread::available_parallelism().map_or_else(|_| "?".into(), |n| n.to_string()),
    );
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        m.insert(
            "loadavg".into(),
            l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        );
    }
    if let Ok(c) = std::fs::read_to_string("/proc/cpuinfo") {
        if let Some(name) = c
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
        {
            m.insert("cpu".into(), name.trim().to_string());
        }
    }
    if let Ok(t) = std::fs::read_to_string("/proc/meminfo") {
        if let Some(kb) = t
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
        {
            m.insert("memory".into(), format!("{} MiB", kb / 1024));
        }
    }
    m.insert("os".into(), std::env::consts::OS.into());
    m.insert(
        "profile".into(),
        if cfg!(debug_assertions) {
            "debug".into()
        } else {
            "release".into()
        },
    );
    m
}

/// Percentile (nearest rank) of sorted milliseconds.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_follows_the_formula() {
        // W3: 600 calls, one request of latency.
        assert!((t_floor(600, 30.0) - 29.03).abs() < 1e-9);
        // Within the burst only the chain counts.
        assert!((t_floor(3, 90.0) - 0.09).abs() < 1e-9);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }

    #[test]
    fn a_missed_part_marks_the_row() {
        let mut r = Row::new("W1", "x", "y");
        r.check(true, "a");
        assert_eq!(r.met, Some(true));
        r.check(false, "b");
        assert_eq!(r.met, Some(false));
        assert_eq!(r.missed, vec!["b".to_string()]);
    }
}
