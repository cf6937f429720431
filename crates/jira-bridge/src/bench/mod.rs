//! `jira-bridge bench`: the workloads W1–W7 of `BENCHMARKS.md` against the simulator
//! with Jira's pacing, through the service's public API, with the simulator's own
//! call counts. See `docs/performance.md`.
//!
//! The simulator (`jira-bridge sim`) and the service (`jira-bridge serve`, a fresh
//! SQLite database) run as separate processes of the current executable on loopback;
//! this process is the client. A baseline (the PyPI `jira` library in a loop, what a
//! user would write instead) runs against the same simulator for W1–W4.

mod baseline;
mod procs;
pub mod report;
mod workloads;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::cli::{Cli, Exit};
use report::{Report, Row};
use workloads::{Ctx, Sizes};

/// Arguments of `jira-bridge bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Workloads to run: W1 … W7 or `all` (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub workload: Vec<String>,
    /// Tiny sizes (seconds, for CI); the figures mean nothing then.
    #[arg(long)]
    pub smoke: bool,
    /// Also run the PyPI `jira` baseline for W1–W4 (about 8 minutes: it is paced by
    /// the rate limit, one call per item).
    #[arg(long, conflicts_with = "no_baseline")]
    pub baseline: bool,
    /// Skip the baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Run the service with debug logs in JSON (timed spans of every request, job
    /// batch and Jira call) and keep them: the evidence of where a workload's time
    /// went. Slows the service down a little; the figures are not comparable then.
    #[arg(long)]
    pub trace: bool,
    /// Write the JSON report to this file (`--json FILE`; the table still prints).
    /// `--json` without a file prints the JSON instead of the table.
    #[arg(value_name = "FILE")]
    pub json_file: Option<PathBuf>,
}

/// All workload ids, in running order.
pub const ALL: [&str; 7] = ["W1", "W2", "W3", "W4", "W5", "W6", "W7"];

fn selected(args: &BenchArgs) -> Result<Vec<&'static str>, Exit> {
    let mut out = Vec::new();
    for w in &args.workload {
        let w = w.trim().to_ascii_uppercase();
        if w == "ALL" {
            return Ok(ALL.to_vec());
        }
        match ALL.iter().find(|a| **a == w) {
            Some(a) if !out.contains(a) => out.push(*a),
            Some(_) => {}
            None => {
                return Err(Exit::Usage(format!(
                    "--workload {w}: expected W1 … W7 or all"
                )))
            }
        }
    }
    out.sort_by_key(|w| ALL.iter().position(|a| a == w));
    Ok(out)
}

/// Run the benchmark and print (or write) the report.
pub async fn run(cli: &Cli, args: &BenchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let chosen = selected(args)?;
    let sizes = if args.smoke {
        Sizes::SMOKE
    } else {
        Sizes::FULL
    };
    let want_baseline = args.baseline
        && !args.no_baseline
        && chosen.iter().any(|w| ["W1", "W2", "W3", "W4"].contains(w));
    let python = if want_baseline {
        match baseline::find_python() {
            Ok(p) => Some(p),
            Err(why) => {
                eprintln!("baseline skipped: {why}");
                None
            }
        }
    } else {
        None
    };
    let baseline_note = match (&python, want_baseline) {
        (Some(p), _) => format!("PyPI jira via {}", p.display()),
        (None, true) => "skipped: no Python with the `jira` library (see stderr)".into(),
        (None, false) => "not run (--baseline runs it)".into(),
    };

    let exe = std::env::current_exe().context("cannot find the jira-bridge executable")?;
    let dir = std::env::temp_dir().join(format!(
        "jira-bridge-bench-{}-{}",
        std::process::id(),
        chrono::Utc::now().format("%Y%m%d%H%M%S")
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(256)
        .build()?;

    let progress = |m: &str| {
        if !cli.json || args.json_file.is_some() {
            eprintln!("bench: {m}");
        }
    };
    progress("starting the simulator and the service");
    let sim = procs::SimProc::start(&exe, &http).await?;
    let svc = match procs::ServiceProc::start(
        &exe,
        cli.config.as_ref(),
        &dir.join("data"),
        &http,
        args.trace,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            sim.stop().await;
            return Err(e);
        }
    };
    let startup_ms = svc.startup.as_secs_f64() * 1000.0;
    let mut ctx = match Ctx::setup(sim, svc, http, sizes).await {
        Ok(c) => c,
        Err(e) => return Err(e.context("setting up tenant and connection")),
    };
    let idle_rss = ctx.svc.rss().map(|r| r.0).unwrap_or(0);

    let mut rows: Vec<Row> = Vec::new();
    let mut peak_rss = 0;
    let mut peak_over = String::new();
    for w in chosen.iter().filter(|w| **w != "W7") {
        progress(&format!("running {w}"));
        let t = Instant::now();
        let result = match *w {
            "W1" => workloads::w1(&mut ctx).await,
            "W2" => workloads::w2(&mut ctx).await,
            "W3" => workloads::w3(&mut ctx).await,
            "W4" => workloads::w4(&mut ctx).await,
            "W5" => workloads::w5(&mut ctx).await,
            "W6" => workloads::w6(&mut ctx).await,
            _ => continue,
        };
        let row = match result {
            Ok(r) => r,
            Err(e) => {
                let mut r = Row::new(w, "-", "-");
                r.error = Some(format!("{e:#}"));
                r
            }
        };
        progress(&format!("{w} done in {:.1} s", t.elapsed().as_secs_f64()));
        rows.push(row);
        if *w != "W6" {
            if let Ok((_, hwm)) = ctx.svc.rss() {
                peak_rss = hwm;
                peak_over = format!("W1-{w} (as selected)");
            }
        }
    }
    if chosen.contains(&"W7") {
        rows.push(workloads::w7(startup_ms, idle_rss, peak_rss, &peak_over));
    }
    if let Some(python) = &python {
        for row in rows.iter_mut() {
            if row.error.is_none() && ["W1", "W2", "W3", "W4"].contains(&row.id.as_str()) {
                progress(&format!("baseline {}", row.id));
                if let Err(e) = baseline::run(python, &dir, &ctx, row).await {
                    row.notes.push(format!("baseline failed: {e:#}"));
                }
            }
        }
    }
    let Ctx { sim, svc, .. } = ctx;
    svc.stop().await;
    sim.stop().await;

    let report = Report {
        smoke: args.smoke,
        machine: report::machine(),
        pacing: procs::bench_pacing(),
        baseline: baseline_note,
        workloads: rows,
        total_s: started.elapsed().as_secs_f64(),
    };
    let bad: Vec<String> = report
        .workloads
        .iter()
        .filter_map(|w| {
            if let Some(e) = &w.error {
                Some(format!("{}: {e}", w.id))
            } else if w.lost.unwrap_or(0) + w.duplicated.unwrap_or(0) > 0 {
                Some(format!("{}: lost or duplicated items", w.id))
            } else {
                None
            }
        })
        .collect();
    if args.trace {
        eprintln!(
            "bench: the service's debug log is {}",
            dir.join("data").join("service.log").display()
        );
    } else if bad.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!(
            "bench: kept {} (service log, baseline inputs)",
            dir.display()
        );
    }
    let json = serde_json::to_string_pretty(&report)?;
    match (&args.json_file, cli.json) {
        (Some(f), _) => {
            std::fs::write(f, &json).with_context(|| format!("cannot write {}", f.display()))?;
            print!("{}", report::table(&report));
        }
        (None, true) => println!("{json}"),
        (None, false) => print!("{}", report::table(&report)),
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Exit::Partial(bad.join("; ")).into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(w: &[&str]) -> BenchArgs {
        BenchArgs {
            workload: w.iter().map(|s| s.to_string()).collect(),
            smoke: false,
            baseline: false,
            no_baseline: false,
            trace: false,
            json_file: None,
        }
    }

    #[test]
    fn workloads_are_parsed_in_running_order() {
        assert_eq!(selected(&args(&["all"])).unwrap(), ALL.to_vec());
        assert_eq!(
            selected(&args(&["w5", "W1", "W5"])).unwrap(),
            vec!["W1", "W5"]
        );
        assert!(selected(&args(&["W8"])).is_err());
    }
}
