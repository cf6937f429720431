//! The baseline: what a user would write instead, a short script over the PyPI `jira`
//! library (`baseline.py`), run against the same simulator and pacing for W1–W4.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

use super::report::{Baseline, Row};
use super::workloads::{worklog_counts, Ctx, EMAIL, TOKEN};

/// The script, embedded so the binary carries it.
pub const SCRIPT: &str = include_str!("baseline.py");

/// Environment variable naming the Python to use (it must import `jira`).
pub const PYTHON_ENV: &str = "JIRA_BRIDGE_BENCH_PYTHON";

/// A Python that can import `jira`: `$JIRA_BRIDGE_BENCH_PYTHON`, else the venv of the
/// conformance suite (`tests/conformance/.venv`, made by its `setup.sh`) found from
/// the current directory upwards. `Err` says why there is none.
pub fn find_python() -> Result<PathBuf, String> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os(PYTHON_ENV) {
        candidates.push(PathBuf::from(p));
    } else if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let p = dir.join("tests/conformance/.venv/bin/python");
            if p.exists() {
                candidates.push(p);
                break;
            }
        }
    }
    let Some(python) = candidates.into_iter().next() else {
        return Err(format!(
            "no Python with the `jira` library: run tests/conformance/setup.sh in the repository \
             (it installs the pinned PyPI `jira` into tests/conformance/.venv) and start the \
             benchmark from there, or set {PYTHON_ENV}"
        ));
    };
    match std::process::Command::new(&python)
        .args(["-c", "import jira"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(python),
        Ok(o) => Err(format!(
            "{} cannot import `jira`: {}",
            python.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run {}: {e}", python.display())),
    }
}

async fn run_script(
    python: &Path,
    dir: &Path,
    ctx: &Ctx,
    workload: &str,
    input: &Value,
) -> anyhow::Result<Value> {
    let script = dir.join("baseline.py");
    if !script.exists() {
        std::fs::write(&script, SCRIPT).context("writing baseline.py")?;
    }
    let input_path = dir.join(format!("baseline-{workload}.json"));
    std::fs::write(&input_path, serde_json::to_vec(input)?)?;
    let out = tokio::time::timeout(
        Duration::from_secs(900),
        tokio::process::Command::new(python)
            .arg(&script)
            .arg(&ctx.sim.url)
            .arg(EMAIL)
            .arg(TOKEN)
            .arg(workload)
            .arg(&input_path)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("the baseline script ran over 15 minutes")??;
    if !out.status.success() {
        bail!(
            "the baseline script failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .with_context(|| format!("unexpected baseline output: {stdout}"))
}

/// Run the baseline of `row`'s workload and attach it to the row.
pub async fn run(python: &Path, dir: &Path, ctx: &Ctx, row: &mut Row) -> anyhow::Result<()> {
    let Some(input) = ctx.baseline_inputs.get(&row.id).cloned() else {
        return Ok(());
    };
    let before = if row.id == "W3" {
        worklog_counts(ctx).await?
    } else {
        HashMap::new()
    };
    ctx.sim.reset_stats().await?;
    let out = run_script(python, dir, ctx, &row.id, &input).await?;
    let calls = ctx.sim.stats().await?;
    let time_s = out["time_s"].as_f64().unwrap_or(0.0);
    let (lost, duplicated) = match row.id.as_str() {
        "W1" | "W4" => {
            let project = input["project"].as_str().unwrap_or("WEB");
            let mut expected: Vec<String> = Vec::new();
            if row.id == "W1" {
                for i in input["items"].as_array().into_iter().flatten() {
                    expected.push(i["summary"].as_str().unwrap_or("").to_string());
                }
            } else {
                for e in input["epics"].as_array().into_iter().flatten() {
                    expected.push(e["summary"].as_str().unwrap_or("").to_string());
                    for s in e["stories"].as_array().into_iter().flatten() {
                        expected.push(s.as_str().unwrap_or("").to_string());
                    }
                }
            }
            let mut found: HashMap<String, u64> = HashMap::new();
            for i in ctx.sim.issues(project).await? {
                *found
                    .entry(i["summary"].as_str().unwrap_or("").to_string())
                    .or_default() += 1;
            }
            let mut lost = 0;
            let mut dup = 0;
            for s in &expected {
                match found.get(s).copied().unwrap_or(0) {
                    0 => lost += 1,
                    n => dup += n - 1,
                }
            }
            (lost, dup)
        }
        "W2" => {
            // Every key read with the status the simulator holds.
            let read = &out["statuses"];
            let truth: HashMap<String, String> = ctx
                .sim
                .issues("OPS")
                .await?
                .iter()
                .filter_map(|i| {
                    Some((
                        i["key"].as_str()?.to_string(),
                        i["status"].as_str()?.to_string(),
                    ))
                })
                .collect();
            let lost = ctx
                .w2_keys
                .iter()
                .filter(|k| read[k.as_str()].as_str() != truth.get(*k).map(String::as_str))
                .count() as u64;
            (lost, 0)
        }
        "W3" => {
            let after = worklog_counts(ctx).await?;
            let mut want: HashMap<&str, u64> = HashMap::new();
            for e in input["entries"].as_array().into_iter().flatten() {
                *want.entry(e["issue"].as_str().unwrap_or("")).or_default() += 1;
            }
            let (mut lost, mut dup) = (0, 0);
            for (k, w) in want {
                let got = after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
                lost += w.saturating_sub(got);
                dup += got.saturating_sub(w);
            }
            (lost, dup)
        }
        _ => (0, 0),
    };
    if out["error_count"].as_u64().unwrap_or(0) > 0 {
        row.notes.push(format!(
            "baseline: {} items failed after the library's retries, e.g. {}",
            out["error_count"], out["errors"][0]
        ));
    }
    row.notes
        .push(format!("baseline calls: {}", calls.breakdown()));
    row.baseline = Some(Baseline {
        time_s,
        calls: calls.total,
        rate_limited_pct: calls.rate_limited_pct(),
        lost,
        duplicated,
        time_ratio: row.time_s.filter(|t| *t > 0.0).map(|t| time_s / t),
        calls_ratio: row
            .calls
            .filter(|c| *c > 0)
            .map(|c| calls.total as f64 / c as f64),
    });
    Ok(())
}
