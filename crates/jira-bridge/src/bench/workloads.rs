//! The workloads W1–W7 of `BENCHMARKS.md`, each through the service's public API.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use super::procs::{bench_pacing, ServiceProc, SimProc};
use super::report::{percentile, Row, LATENCY_MS};
use crate::cli::client::Api;

/// The Jira user every connection uses (the scenario's administrator).
pub const EMAIL: &str = "alice@example.com";
/// Her API token in the simulator's scenario.
pub const TOKEN: &str = "ATATT-alice-api-token";
/// Distinct assignees of W1 (all active users of the scenario who can be assigned).
pub const ASSIGNEES: [&str; 5] = [
    "alice@example.com",
    "bob@example.com",
    "kiri@example.com",
    "kai@example.com",
    "vera@example.com",
];

/// Workload sizes: the full benchmark or the smoke run.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// W1 tickets.
    pub w1: usize,
    /// W2 linked tickets.
    pub w2: usize,
    /// W2 tickets changed in Jira.
    pub w2_changed: usize,
    /// W3 time entries.
    pub w3: usize,
    /// W3 issues the entries are spread over.
    pub w3_issues: usize,
    /// W4 epics.
    pub w4_epics: usize,
    /// W4 stories per epic.
    pub w4_stories: usize,
    /// W5 webhooks.
    pub w5: usize,
    /// W5 concurrent senders.
    pub w5_senders: usize,
    /// W6 concurrent clients.
    pub w6_clients: usize,
    /// W6 searches per client and side.
    pub w6_per_client: usize,
}

impl Sizes {
    /// `BENCHMARKS.md`.
    pub const FULL: Sizes = Sizes {
        w1: 1000,
        w2: 5000,
        w2_changed: 250,
        w3: 600,
        w3_issues: 20,
        w4_epics: 20,
        w4_stories: 25,
        w5: 20_000,
        w5_senders: 32,
        w6_clients: 50,
        w6_per_client: 20,
    };
    /// Tiny, for CI.
    pub const SMOKE: Sizes = Sizes {
        w1: 20,
        w2: 100,
        w2_changed: 10,
        w3: 20,
        w3_issues: 4,
        w4_epics: 2,
        w4_stories: 3,
        w5: 200,
        w5_senders: 8,
        w6_clients: 5,
        w6_per_client: 4,
    };
}

/// Everything the workloads share.
pub struct Ctx {
    /// The simulator.
    pub sim: SimProc,
    /// The service.
    pub svc: ServiceProc,
    /// The tenant's API client.
    pub api: Api,
    /// The tenant's API key.
    pub key: String,
    /// Plain HTTP (webhooks, direct searches).
    pub http: reqwest::Client,
    /// The main connection.
    pub con: String,
    /// Its webhook secret.
    pub secret: String,
    /// Sizes.
    pub sizes: Sizes,
    /// Issues in WEB that have a ticket: (issue id, key).
    pub linked: Vec<(String, String)>,
    /// The W2 issue keys (for the baseline).
    pub w2_keys: Vec<String>,
    /// The W3 plan (for the baseline): (issue key, started, seconds).
    pub w3_plan: Vec<(String, String, i64)>,
    /// Baseline inputs per workload, written for the script.
    pub baseline_inputs: BTreeMap<String, Value>,
}

const FINAL: [&str; 4] = ["succeeded", "failed", "partially_failed", "cancelled"];

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Ctx {
    /// Tenant, API key, connection and webhook secret, all through the public API.
    pub async fn setup(
        sim: SimProc,
        svc: ServiceProc,
        http: reqwest::Client,
        sizes: Sizes,
    ) -> anyhow::Result<Ctx> {
        let admin = Api::new(&svc.url, Some(&svc.admin_key))?;
        let t = admin
            .call(
                Method::POST,
                "/v1/admin/tenants",
                Some(&json!({"name": "bench"})),
            )
            .await
            .context("creating the tenant")?;
        let key = t["api_key"]["key"]
            .as_str()
            .context("no API key in the tenant answer")?
            .to_string();
        let api = Api::new(&svc.url, Some(&key))?;
        let con = create_connection(&api, &sim.url, "Acme").await?;
        let s = api
            .call(
                Method::POST,
                &format!("/v1/connections/{con}/webhook-setup"),
                Some(&json!({})),
            )
            .await
            .context("webhook set-up")?;
        let secret = s["secret"]
            .as_str()
            .context("no webhook secret")?
            .to_string();
        Ok(Ctx {
            sim,
            svc,
            api,
            key,
            http,
            con,
            secret,
            sizes,
            linked: Vec::new(),
            w2_keys: Vec::new(),
            w3_plan: Vec::new(),
            baseline_inputs: BTreeMap::new(),
        })
    }

    /// Wait for a job to end; answers its last state.
    pub async fn wait_job(&self, id: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            let v = self
                .api
                .call(Method::GET, &format!("/v1/jobs/{id}"), None)
                .await?;
            if FINAL.contains(&v["state"].as_str().unwrap_or("")) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("job {id} did not end within 15 minutes: {v}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn bulk_tickets(
        &self,
        con: &str,
        defaults: Value,
        items: &[Value],
    ) -> anyhow::Result<Value> {
        let v = self
            .api
            .call(
                Method::POST,
                "/v1/tickets/bulk",
                Some(&json!({"connection_id": con, "defaults": defaults, "items": items})),
            )
            .await
            .context("POST /v1/tickets/bulk")?;
        let job = v["job_id"].as_str().context("no job id")?.to_string();
        self.wait_job(&job).await
    }

    /// Issues of `project` whose summary starts with `prefix`, by summary.
    async fn issues_by_summary(
        &self,
        project: &str,
        prefix: &str,
    ) -> anyhow::Result<HashMap<String, Vec<Value>>> {
        let mut by: HashMap<String, Vec<Value>> = HashMap::new();
        for i in self.sim.issues(project).await? {
            let s = i["summary"].as_str().unwrap_or("").to_string();
            if s.starts_with(prefix) {
                by.entry(s).or_default().push(i);
            }
        }
        Ok(by)
    }

    /// Make sure `n` WEB issues with tickets exist (W3 and W5 work on them).
    pub async fn ensure_linked(&mut self, n: usize) -> anyhow::Result<()> {
        if self.linked.len() >= n {
            return Ok(());
        }
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"source": {"kind": "bench-setup", "id": i.to_string()}, "summary": format!("Setup ticket {i}")}))
            .collect();
        let job = self
            .bulk_tickets(
                &self.con,
                json!({"project_key": "WEB", "issue_type": "Task"}),
                &items,
            )
            .await?;
        if job["state"] != "succeeded" {
            bail!("set-up tickets: {job}");
        }
        self.linked = self
            .issues_by_summary("WEB", "Setup ticket ")
            .await?
            .into_values()
            .filter_map(|v| v.into_iter().next())
            .map(|i| {
                (
                    i["id"].as_str().unwrap_or("").to_string(),
                    i["key"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        self.linked
            .sort_by_key(|(id, _)| id.parse::<u64>().unwrap_or(0));
        Ok(())
    }
}

async fn create_connection(api: &Api, sim_url: &str, name: &str) -> anyhow::Result<String> {
    let c = api
        .call(
            Method::POST,
            "/v1/connections",
            Some(
                &json!({"name": name, "kind": "cloud_token", "base_url": sim_url,
                         "email": EMAIL, "token": TOKEN}),
            ),
        )
        .await
        .context("creating the connection")?;
    Ok(c["id"].as_str().context("no connection id")?.to_string())
}

fn count_copies<'a>(
    expected: impl Iterator<Item = &'a String>,
    found: &HashMap<String, Vec<Value>>,
) -> (u64, u64) {
    let (mut lost, mut dup) = (0, 0);
    for s in expected {
        match found.get(s).map_or(0, Vec::len) {
            0 => lost += 1,
            n => dup += (n - 1) as u64,
        }
    }
    (lost, dup)
}

/// W1: tickets from host objects into one project, 10% assigned by e-mail.
pub async fn w1(ctx: &mut Ctx) -> anyhow::Result<Row> {
    let n = ctx.sizes.w1;
    let mut row = Row::new(
        "W1",
        format!(
            "{n} tickets into WEB, 10% assigned by e-mail ({} distinct)",
            ASSIGNEES.len()
        ),
        "calls <= 1.05 x C_min; time <= 1.25 x T_floor; 0 duplicates",
    );
    let items: Vec<Value> = (0..n)
        .map(|i| {
            let mut v = json!({"source": {"kind": "finding", "id": i.to_string()},
                               "summary": format!("W1 ticket {i}")});
            if i % 10 == 0 {
                v["assignee_email"] = json!(ASSIGNEES[(i / 10) % ASSIGNEES.len()]);
            }
            v
        })
        .collect();
    let emails = (0..n)
        .step_by(10)
        .map(|i| ASSIGNEES[(i / 10) % ASSIGNEES.len()])
        .collect::<HashSet<_>>()
        .len() as u64;
    ctx.sim.reset_stats().await?;
    let t0 = Instant::now();
    let job = ctx
        .bulk_tickets(
            &ctx.con,
            json!({"project_key": "WEB", "issue_type": "Task"}),
            &items,
        )
        .await?;
    let took = t0.elapsed();
    let calls = ctx.sim.stats().await?;
    // 50 per bulk create; one user search per distinct e-mail; the project's issue
    // types and the type's fields. The chain: two metadata reads, then one bulk
    // create of 50 (30 ms + 1 ms per issue).
    let c_min = n.div_ceil(50) as u64 + emails + 2;
    let chain = 2.0 * LATENCY_MS + LATENCY_MS + 50f64.min(n as f64);
    row.items = n as u64;
    row.calls(c_min, chain, &calls);
    row.time(secs(took));
    let expected: Vec<String> = (0..n).map(|i| format!("W1 ticket {i}")).collect();
    let found = ctx.issues_by_summary("WEB", "W1 ticket ").await?;
    let (lost, dup) = count_copies(expected.iter(), &found);
    row.lost = Some(lost);
    row.duplicated = Some(dup);
    row.failed = job["failed"].as_u64();
    // Assignees as asked.
    let wrong_assignee = (0..n)
        .step_by(10)
        .filter(|i| {
            found
                .get(&format!("W1 ticket {i}"))
                .and_then(|v| v.first())
                .is_none_or(|iss| iss["assignee"].is_null())
        })
        .count();
    if wrong_assignee > 0 {
        row.notes.push(format!(
            "{wrong_assignee} assigned tickets arrived without assignee"
        ));
    }
    row.check(
        (calls.total as f64) <= 1.05 * c_min as f64,
        format!("calls {} > 1.05 x {c_min}", calls.total),
    );
    if let Some(f) = row.t_floor_s {
        row.check(
            secs(took) <= 1.25 * f,
            format!("time {:.2} s > 1.25 x {f:.2} s", secs(took)),
        );
    }
    row.check(dup == 0 && lost == 0, "lost or duplicated tickets");
    ctx.linked = found
        .values()
        .filter_map(|v| v.first())
        .map(|i| {
            (
                i["id"].as_str().unwrap_or("").to_string(),
                i["key"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    ctx.linked
        .sort_by_key(|(id, _)| id.parse::<u64>().unwrap_or(0));
    ctx.baseline_inputs.insert(
        "W1".into(),
        json!({"project": "WEB", "issue_type": "Task", "items": items.iter().map(|i| json!({
            "summary": i["summary"].as_str().map(|s| s.replacen("W1 ", "B1 ", 1)),
            "assignee_email": i.get("assignee_email"),
        })).collect::<Vec<_>>()}),
    );
    Ok(row)
}

/// W2: linked tickets, some changed in Jira since the last sync; converge.
pub async fn w2(ctx: &mut Ctx) -> anyhow::Result<Row> {
    let (n, changed) = (ctx.sizes.w2, ctx.sizes.w2_changed);
    let mut row = Row::new(
        "W2",
        format!("{n} linked tickets, {changed} changed in Jira since the last sync"),
        "calls <= C_min + 2; every changed link updated",
    );
    // A connection of its own, so its status sync covers exactly these tickets.
    let con = create_connection(&ctx.api, &ctx.sim.url, "Acme W2").await?;
    let setup = Instant::now();
    for (c, chunk) in (0..n).collect::<Vec<_>>().chunks(1000).enumerate() {
        let items: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"source": {"kind": "story", "id": i.to_string()}, "summary": format!("W2 ticket {i}")}))
            .collect();
        let job = ctx
            .bulk_tickets(
                &con,
                json!({"project_key": "OPS", "issue_type": "Task"}),
                &items,
            )
            .await?;
        if job["state"] != "succeeded" {
            bail!("W2 set-up chunk {c}: {job}");
        }
    }
    let found = ctx.issues_by_summary("OPS", "W2 ticket ").await?;
    let mut keys: Vec<(usize, String)> = found
        .iter()
        .filter_map(|(s, v)| {
            let i = s.trim_start_matches("W2 ticket ").parse::<usize>().ok()?;
            Some((i, v.first()?["key"].as_str()?.to_string()))
        })
        .collect();
    keys.sort();
    if keys.len() != n {
        bail!("W2 set-up: {} of {n} issues exist", keys.len());
    }
    // Make them look created and last updated 3 hours ago, so the next sync after
    // the first one only sees what changes from now on.
    let past = (chrono::Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    let results: Vec<anyhow::Result<Value>> = futures::stream::iter(keys.iter())
        .map(|(_, k)| {
            let past = past.clone();
            let sim = &ctx.sim;
            async move {
                sim.put(
                    &format!("/_sim/issues/{k}/times"),
                    &json!({"created": past, "updated": past}),
                )
                .await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    // The last sync: every link as created.
    let first = sync(ctx, &con).await?;
    if first["state"] != "succeeded" {
        bail!("W2 first sync: {first}");
    }
    let step = (n / changed.max(1)).max(1);
    let changed_keys: Vec<String> = keys
        .iter()
        .step_by(step)
        .take(changed)
        .map(|(_, k)| k.clone())
        .collect();
    let results: Vec<anyhow::Result<Value>> = futures::stream::iter(changed_keys.iter())
        .map(|k| {
            let sim = &ctx.sim;
            async move {
                sim.post(
                    &format!("/_sim/issues/{k}/transition"),
                    &json!({"as": "bob", "to": "In Progress"}),
                )
                .await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    row.figures.insert("setup_s".into(), secs(setup.elapsed()));
    let seq_before = last_seq(ctx).await?;

    ctx.sim.reset_stats().await?;
    let t0 = Instant::now();
    let job = sync(ctx, &con).await?;
    let took = t0.elapsed();
    let calls = ctx.sim.stats().await?;
    let c_min = changed.div_ceil(100) as u64;
    row.items = changed as u64;
    row.calls(c_min, c_min as f64 * LATENCY_MS, &calls);
    row.time(secs(took));
    row.failed = job["failed"].as_u64();
    // Against the simulator: every changed issue is In Progress there; the service's
    // tickets must say so, each with one status event.
    let now = ctx.issues_by_summary("OPS", "W2 ticket ").await?;
    let in_progress: HashSet<String> = now
        .values()
        .filter_map(|v| v.first())
        .filter(|i| i["status"] == "In Progress")
        .filter_map(|i| i["key"].as_str().map(str::to_string))
        .collect();
    let tickets = list_all(
        &ctx.api,
        &format!("/v1/tickets?connection_id={con}&status_category=indeterminate"),
    )
    .await?;
    let ours: HashSet<String> = tickets
        .iter()
        .filter_map(|t| t["issue_key"].as_str().map(str::to_string))
        .collect();
    let lost = in_progress.difference(&ours).count() as u64;
    let events = status_events_since(ctx, seq_before).await?;
    let mut per: HashMap<String, u64> = HashMap::new();
    for e in &events {
        *per.entry(e["subject"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    let dup = per.values().map(|n| n.saturating_sub(1)).sum::<u64>()
        + ours.difference(&in_progress).count() as u64;
    row.lost = Some(lost);
    row.duplicated = Some(dup);
    row.check(
        calls.total <= c_min + 2,
        format!("calls {} > C_min + 2 = {}", calls.total, c_min + 2),
    );
    row.check(lost == 0, format!("{lost} changed links not updated"));
    row.check(dup == 0, format!("{dup} repeated status events"));
    ctx.w2_keys = keys.into_iter().map(|(_, k)| k).collect();
    ctx.baseline_inputs
        .insert("W2".into(), json!({"keys": ctx.w2_keys}));
    Ok(row)
}

async fn sync(ctx: &Ctx, con: &str) -> anyhow::Result<Value> {
    let v = ctx
        .api
        .call(
            Method::POST,
            "/v1/tickets/sync",
            Some(&json!({"connection_id": con})),
        )
        .await
        .context("POST /v1/tickets/sync")?;
    let job = v["job_id"].as_str().context("no job id")?.to_string();
    ctx.wait_job(&job).await
}

async fn list_all(api: &Api, path: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let p = match &cursor {
            Some(c) => format!("{path}{sep}limit=200&cursor={c}"),
            None => format!("{path}{sep}limit=200"),
        };
        let v = api.call(Method::GET, &p, None).await?;
        out.extend(v["items"].as_array().cloned().unwrap_or_default());
        match v["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => return Ok(out),
        }
    }
}

async fn last_seq(ctx: &Ctx) -> anyhow::Result<u64> {
    let mut after = 0;
    loop {
        let v = ctx
            .api
            .call(
                Method::GET,
                &format!("/v1/events?after={after}&limit=500"),
                None,
            )
            .await?;
        let next = v["next_after"].as_u64().unwrap_or(after);
        if v["has_more"] != true || next == after {
            return Ok(next);
        }
        after = next;
    }
}

async fn status_events_since(ctx: &Ctx, mut after: u64) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    loop {
        let v = ctx
            .api
            .call(
                Method::GET,
                &format!("/v1/events?after={after}&limit=500"),
                None,
            )
            .await?;
        out.extend(
            v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["type"] == "ticket.status_changed")
                .cloned(),
        );
        let next = v["next_after"].as_u64().unwrap_or(after);
        if v["has_more"] != true || next == after {
            return Ok(out);
        }
        after = next;
    }
}

/// W3: time entries to worklogs (Jira has no bulk worklog create).
pub async fn w3(ctx: &mut Ctx) -> anyhow::Result<Row> {
    let (n, spread) = (ctx.sizes.w3, ctx.sizes.w3_issues);
    let mut row = Row::new(
        "W3",
        format!("{n} time entries to worklogs on {spread} issues"),
        "time <= 1.10 x T_floor; <= 2% of calls answered 429; 0 failures, 0 duplicates",
    );
    ctx.ensure_linked(spread).await?;
    let issues: Vec<String> = ctx
        .linked
        .iter()
        .take(spread)
        .map(|(_, k)| k.clone())
        .collect();
    let before: HashMap<String, u64> = worklog_counts(ctx).await?;
    let today = chrono::Utc::now().date_naive();
    let plan: Vec<(String, String, i64)> = (0..n)
        .map(|i| {
            let day = today - chrono::Days::new(1 + (i / 96) as u64);
            let minute = (i % 96) * 5;
            (
                issues[i % issues.len()].clone(),
                format!("{day}T{:02}:{:02}:00Z", minute / 60, minute % 60),
                300,
            )
        })
        .collect();
    ctx.sim.reset_stats().await?;
    let t0 = Instant::now();
    let results: Vec<anyhow::Result<Value>> = futures::stream::iter(plan.iter().enumerate())
        .map(|(i, (key, started, secs))| {
            let api = &ctx.api;
            let body = json!({"connection_id": ctx.con, "owner": "bench", "issue_key": key,
                "started_at": started, "duration_seconds": secs,
                "comment": format!("W3 entry {i}"), "sync": "manual"});
            async move {
                api.call(
                    Method::PUT,
                    &format!("/v1/time-entries/w3-{i}"),
                    Some(&body),
                )
                .await
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let stored = t0.elapsed();
    let ids: Vec<String> = (0..n).map(|i| format!("w3-{i}")).collect();
    let v = ctx
        .api
        .call(
            Method::POST,
            "/v1/time-entries/sync",
            Some(&json!({"source_ids": ids})),
        )
        .await
        .context("POST /v1/time-entries/sync")?;
    let job_id = v["job_id"].as_str().context("no job id")?.to_string();
    let job = ctx.wait_job(&job_id).await?;
    let took = t0.elapsed();
    let calls = ctx.sim.stats().await?;
    row.items = n as u64;
    row.calls(n as u64, LATENCY_MS, &calls);
    row.time(secs(took));
    row.figures.insert("upserts_s".into(), secs(stored));
    let after = worklog_counts(ctx).await?;
    let (mut lost, mut dup) = (0u64, 0u64);
    let mut want: HashMap<&str, u64> = HashMap::new();
    for (k, _, _) in &plan {
        *want.entry(k.as_str()).or_default() += 1;
    }
    for (k, w) in &want {
        let got = after.get(*k).copied().unwrap_or(0) - before.get(*k).copied().unwrap_or(0);
        lost += w.saturating_sub(got);
        dup += got.saturating_sub(*w);
    }
    let failed = job["failed"].as_u64().unwrap_or(0);
    row.lost = Some(lost);
    row.duplicated = Some(dup);
    row.failed = Some(failed);
    if let (Some(t), Some(f)) = (row.time_s, row.t_floor_s) {
        row.check(t <= 1.10 * f, format!("time {t:.2} s > 1.10 x {f:.2} s"));
    }
    let pct = calls.rate_limited_pct();
    row.check(
        pct <= 2.0,
        format!("{pct:.1}% of calls answered 429 (> 2%)"),
    );
    row.check(
        failed == 0 && lost == 0,
        format!("{failed} failed, {lost} lost"),
    );
    row.check(dup == 0, format!("{dup} duplicated worklogs"));
    ctx.w3_plan = plan.clone();
    ctx.baseline_inputs.insert(
        "W3".into(),
        json!({"entries": plan.iter().enumerate().map(|(i, (k, s, d))| json!({
            "issue": k, "started": s, "seconds": d, "comment": format!("B3 entry {i}")})).collect::<Vec<_>>()}),
    );
    Ok(row)
}

/// W4: an export of epics with their stories, stories linked to their epic.
pub async fn w4(ctx: &mut Ctx) -> anyhow::Result<Row> {
    let (epics, stories) = (ctx.sizes.w4_epics, ctx.sizes.w4_stories);
    let mut row = Row::new(
        "W4",
        format!("export {epics} epics x {stories} stories with parent links"),
        "calls <= 1.05 x C_min; time <= 1.25 x T_floor",
    );
    let doc: Value = ctx
        .http
        .get(format!("{}/v1/openapi.json", ctx.svc.url))
        .send()
        .await?
        .json()
        .await?;
    if doc["paths"].get("/v1/exports").is_none() {
        row.notes
            .push("skipped: this build has no exports API (POST /v1/exports)".into());
        return Ok(row);
    }
    let tree: Vec<Value> = (0..epics)
        .map(|e| {
            json!({"source": {"kind": "epic", "id": e.to_string()},
                   "summary": format!("W4 epic {e}"),
                   "stories": (0..stories).map(|s| json!({
                       "source": {"kind": "story", "id": format!("{e}-{s}")},
                       "summary": format!("W4 epic {e} story {s}")})).collect::<Vec<_>>()})
        })
        .collect();
    ctx.sim.reset_stats().await?;
    let t0 = Instant::now();
    let v = ctx
        .api
        .call(
            Method::POST,
            "/v1/exports",
            Some(&json!({"connection_id": ctx.con, "project_key": "WEB", "epics": tree})),
        )
        .await
        .context("POST /v1/exports")?;
    let job_id = v["job_id"].as_str().context("no job id")?.to_string();
    let job = ctx.wait_job(&job_id).await?;
    let took = t0.elapsed();
    let calls = ctx.sim.stats().await?;
    // Bulk creates of 50: the epics first, then the stories naming them; metadata:
    // the project's issue types and the fields of Epic and Story. The chain: types,
    // epic fields, the epics' bulk create, one stories' bulk create.
    let n_stories = epics * stories;
    let c_min = (epics.div_ceil(50) + n_stories.div_ceil(50)) as u64 + 3;
    let chain = 4.0 * LATENCY_MS + epics.min(50) as f64 + n_stories.min(50) as f64;
    row.items = (epics + n_stories) as u64;
    row.calls(c_min, chain, &calls);
    row.time(secs(took));
    row.failed = job["failed"].as_u64();
    let found = ctx.issues_by_summary("WEB", "W4 epic ").await?;
    let mut expected = Vec::new();
    let (mut lost, mut dup) = (0u64, 0u64);
    for e in 0..epics {
        let epic = format!("W4 epic {e}");
        let epic_key = found
            .get(&epic)
            .and_then(|v| v.first())
            .and_then(|i| i["key"].as_str())
            .map(str::to_string);
        expected.push(epic);
        for s in 0..stories {
            let story = format!("W4 epic {e} story {s}");
            // A story under the wrong epic (or none) counts as lost.
            let parented = found
                .get(&story)
                .and_then(|v| v.first())
                .is_some_and(|i| epic_key.is_some() && i["parent"].as_str() == epic_key.as_deref());
            if !parented && found.contains_key(&story) {
                lost += 1;
            }
            expected.push(story);
        }
    }
    let (l, d) = count_copies(expected.iter(), &found);
    lost += l;
    dup += d;
    row.lost = Some(lost);
    row.duplicated = Some(dup);
    row.check(
        (calls.total as f64) <= 1.05 * c_min as f64,
        format!("calls {} > 1.05 x {c_min}", calls.total),
    );
    if let Some(f) = row.t_floor_s {
        row.check(
            secs(took) <= 1.25 * f,
            format!("time {:.2} s > 1.25 x {f:.2} s", secs(took)),
        );
    }
    row.check(lost == 0 && dup == 0, "lost or duplicated issues");
    ctx.baseline_inputs.insert(
        "W4".into(),
        json!({"project": "WEB", "epics": (0..epics).map(|e| json!({
            "summary": format!("B4 epic {e}"),
            "stories": (0..stories).map(|s| format!("B4 epic {e} story {s}")).collect::<Vec<_>>()
        })).collect::<Vec<_>>()}),
    );
    Ok(row)
}

/// Worklogs per WEB issue in the simulator.
pub async fn worklog_counts(ctx: &Ctx) -> anyhow::Result<HashMap<String, u64>> {
    Ok(ctx
        .sim
        .issues("WEB")
        .await?
        .iter()
        .filter_map(|i| Some((i["key"].as_str()?.to_string(), i["worklogs"].as_u64()?)))
        .collect())
}

fn sign(secret: &str, body: &[u8]) -> anyhow::Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| anyhow::anyhow!("webhook secret: {e}"))?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// W5: signed `jira:issue_updated` webhooks as fast as the service takes them.
pub async fn w5(ctx: &mut Ctx) -> anyhow::Result<Row> {
    let n = ctx.sizes.w5;
    let mut row = Row::new(
        "W5",
        format!(
            "{n} signed jira:issue_updated webhooks, {} concurrent senders",
            ctx.sizes.w5_senders
        ),
        ">= 5,000 events/s on 2 cores with SQLite; p99 ack < 25 ms; all applied",
    );
    ctx.ensure_linked(ctx.sizes.w1.min(1000)).await?;
    let linked = Arc::new(ctx.linked.clone());
    let health_before = webhook_health(ctx).await?;
    let applied_before = health_before["applied"].as_u64().unwrap_or(0);
    let url = format!("{}/v1/webhooks/jira/{}", ctx.svc.url, ctx.con);
    let base = chrono::Utc::now() + chrono::Duration::minutes(1);
    // Bodies are made and signed up front, so the measurement is the service's.
    let statuses = [
        ("To Do", "10000", 2, "new"),
        ("In Progress", "3", 4, "indeterminate"),
        ("In Review", "10001", 4, "indeterminate"),
        ("Done", "10002", 3, "done"),
    ];
    let mut bodies = Vec::with_capacity(n);
    for i in 0..n {
        let (id, key) = &linked[i % linked.len()];
        let (name, sid, cat, ckey) = statuses[(i / linked.len()) % statuses.len()];
        let updated = (base + chrono::Duration::milliseconds(i as i64))
            .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
            .to_string();
        let body = serde_json::to_vec(&json!({
            "timestamp": base.timestamp_millis() + i as i64,
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "issue": {"id": id, "key": key, "fields": {
                "summary": format!("W1 ticket {i}"), "updated": updated,
                "status": {"id": sid, "name": name,
                           "statusCategory": {"id": cat, "key": ckey, "name": name}}}},
            "changelog": {"id": i.to_string(), "items": [{"field": "status", "fieldtype": "jira",
                          "toString": name, "to": sid}]}
        }))?;
        let sig = sign(&ctx.secret, &body)?;
        bodies.push((format!("bench-w5-{i}"), body, sig));
    }
    let t0 = Instant::now();
    let results: Vec<anyhow::Result<(u16, f64)>> = futures::stream::iter(bodies)
        .map(|(ident, body, sig)| {
            let http = &ctx.http;
            let url = &url;
            async move {
                let s = Instant::now();
                let r = http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-atlassian-webhook-identifier", ident)
                    .header("x-hub-signature", sig)
                    .body(body)
                    .send()
                    .await?;
                let status = r.status().as_u16();
                let _ = r.bytes().await?;
                Ok((status, s.elapsed().as_secs_f64() * 1000.0))
            }
        })
        .buffer_unordered(ctx.sizes.w5_senders)
        .collect()
        .await;
    let took = t0.elapsed();
    let mut lat = Vec::with_capacity(n);
    let (mut accepted, mut duplicate, mut refused) = (0u64, 0u64, 0u64);
    for r in results {
        match r {
            Ok((202, ms)) => {
                accepted += 1;
                lat.push(ms);
            }
            Ok((200, ms)) => {
                duplicate += 1;
                lat.push(ms);
            }
            _ => refused += 1,
        }
    }
    lat.sort_by(f64::total_cmp);
    // Every accepted delivery applied.
    let deadline = Instant::now() + Duration::from_secs(600);
    let applied = loop {
        let h = webhook_health(ctx).await?;
        let applied = h["applied"].as_u64().unwrap_or(0) - applied_before;
        if applied >= accepted || Instant::now() > deadline {
            break applied;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let applied_in = t0.elapsed();
    let eps = n as f64 / secs(took);
    let p50 = percentile(&lat, 50.0);
    let p99 = percentile(&lat, 99.0);
    row.items = n as u64;
    row.time(secs(took));
    row.figures.insert("events_per_s".into(), eps);
    row.figures.insert("ack_p50_ms".into(), p50);
    row.figures.insert("ack_p99_ms".into(), p99);
    row.figures.insert("applied".into(), applied as f64);
    row.figures.insert("all_applied_s".into(), secs(applied_in));
    row.failed = Some(refused);
    row.lost = Some((n as u64).saturating_sub(applied));
    row.duplicated = Some(duplicate + applied.saturating_sub(n as u64));
    row.check(eps >= 5000.0, format!("{eps:.0} events/s < 5,000"));
    row.check(p99 < 25.0, format!("p99 ack {p99:.1} ms >= 25 ms"));
    row.check(
        applied == n as u64 && refused == 0,
        format!("{applied} of {n} applied, {refused} refused"),
    );
    Ok(row)
}

async fn webhook_health(ctx: &Ctx) -> anyhow::Result<Value> {
    let v = ctx
        .api
        .call(
            Method::GET,
            &format!("/v1/connections/{}/webhook-setup", ctx.con),
            None,
        )
        .await?;
    Ok(v["health"].clone())
}

/// W6: issue search through the service against the simulator directly.
pub async fn w6(ctx: &mut Ctx) -> anyhow::Result<Row> {
    let (clients, per) = (ctx.sizes.w6_clients, ctx.sizes.w6_per_client);
    let mut row = Row::new(
        "W6",
        format!(
            "issue search, {clients} concurrent clients x {per}, service vs simulator directly"
        ),
        "added latency p50 < 1 ms, p99 < 5 ms",
    );
    ctx.ensure_linked(50).await?;
    // The rate limit is off for this one (both sides would only measure the queue);
    // the 30 ms latency stays.
    ctx.sim
        .put(
            "/_sim/pacing",
            &json!({"latency_ms": 30, "latency_per_item_ms": 1}),
        )
        .await?;
    // One issue by key: the simulator answers it without scanning and sorting its
    // whole world (a project-wide sorted search made W6 measure the simulator's CPU).
    let key = &ctx.linked.first().context("no issue to search for")?.1;
    let jql = format!("key = {key}");
    let jql = jql.as_str();
    let service_url = format!(
        "{}/v1/connections/{}/issues/search?jql={}&limit=20",
        ctx.svc.url,
        ctx.con,
        url::form_urlencoded::byte_serialize(jql.as_bytes()).collect::<String>()
    );
    let direct_url = format!("{}/rest/api/3/search/jql", ctx.sim.url);
    let direct_body = json!({"jql": jql, "maxResults": 20,
        "fields": crate::search::SEARCH_FIELDS});
    // Warm both paths (connection pool, metadata) before measuring.
    for _ in 0..3 {
        one_search(ctx, &service_url, &direct_url, &direct_body, true).await?;
        one_search(ctx, &service_url, &direct_url, &direct_body, false).await?;
    }
    let t0 = Instant::now();
    let results: Vec<anyhow::Result<Vec<(bool, Searched)>>> = futures::stream::iter(0..clients)
        .map(|c| {
            let (s, d, b) = (&service_url, &direct_url, &direct_body);
            let ctx = &*ctx;
            async move {
                let mut out = Vec::with_capacity(2 * per);
                for i in 0..per {
                    // Alternate the order so both sides see the same conditions.
                    let first = (c + i) % 2 == 0;
                    out.push((first, one_search(ctx, s, d, b, first).await?));
                    out.push((!first, one_search(ctx, s, d, b, !first).await?));
                }
                Ok(out)
            }
        })
        .buffer_unordered(clients)
        .collect()
        .await;
    let took = t0.elapsed();
    let restored = ctx.sim.put("/_sim/pacing", &bench_pacing()).await;
    let (mut svc, mut direct) = (Vec::new(), Vec::new());
    // From the service's `Server-Timing`: time queued for the site's pacer, and the
    // rest of each answer's time that was neither the pacer nor Jira (our own).
    let (mut pacer, mut own) = (Vec::new(), Vec::new());
    for r in results {
        for (service, s) in r? {
            if service {
                svc.push(s.ms);
                if let Some((p, j)) = s.upstream {
                    pacer.push(p);
                    own.push((s.ms - p - j).max(0.0));
                }
            } else {
                direct.push(s.ms);
            }
        }
    }
    restored?;
    for v in [&mut svc, &mut direct, &mut pacer, &mut own] {
        v.sort_by(f64::total_cmp);
    }
    let added50 = percentile(&svc, 50.0) - percentile(&direct, 50.0);
    let added99 = percentile(&svc, 99.0) - percentile(&direct, 99.0);
    row.items = (svc.len() + direct.len()) as u64;
    row.time(secs(took));
    row.figures
        .insert("service_p50_ms".into(), percentile(&svc, 50.0));
    row.figures
        .insert("service_p99_ms".into(), percentile(&svc, 99.0));
    row.figures
        .insert("direct_p50_ms".into(), percentile(&direct, 50.0));
    row.figures
        .insert("direct_p99_ms".into(), percentile(&direct, 99.0));
    row.figures.insert("added_p50_ms".into(), added50);
    row.figures.insert("added_p99_ms".into(), added99);
    if !pacer.is_empty() {
        row.figures
            .insert("pacer_wait_p50_ms".into(), percentile(&pacer, 50.0));
        row.figures
            .insert("pacer_wait_p99_ms".into(), percentile(&pacer, 99.0));
        row.figures
            .insert("own_p50_ms".into(), percentile(&own, 50.0));
        row.figures
            .insert("own_p99_ms".into(), percentile(&own, 99.0));
    }
    row.check(added50 < 1.0, format!("added p50 {added50:.2} ms >= 1 ms"));
    row.check(added99 < 5.0, format!("added p99 {added99:.2} ms >= 5 ms"));
    Ok(row)
}

/// One timed search.
struct Searched {
    /// Wall time seen by the client.
    ms: f64,
    /// Through the service: its `Server-Timing` `pacer` and `jira` durations.
    upstream: Option<(f64, f64)>,
}

/// The `pacer` and `jira` durations (ms) of a `Server-Timing` header.
fn upstream_timing(h: &reqwest::header::HeaderMap) -> Option<(f64, f64)> {
    let v = h.get("server-timing")?.to_str().ok()?;
    let dur = |name: &str| {
        v.split(',').find_map(|m| {
            let mut parts = m.trim().split(';');
            (parts.next()? == name).then_some(())?;
            parts.find_map(|p| p.trim().strip_prefix("dur=")?.parse::<f64>().ok())
        })
    };
    Some((dur("pacer")?, dur("jira")?))
}

async fn one_search(
    ctx: &Ctx,
    service_url: &str,
    direct_url: &str,
    direct_body: &Value,
    service: bool,
) -> anyhow::Result<Searched> {
    let t = Instant::now();
    let res = if service {
        ctx.http
            .get(service_url)
            .bearer_auth(&ctx.key)
            .send()
            .await?
    } else {
        ctx.http
            .post(direct_url)
            .basic_auth(EMAIL, Some(TOKEN))
            .json(direct_body)
            .send()
            .await?
    };
    let status = res.status();
    let upstream = if service {
        upstream_timing(res.headers())
    } else {
        None
    };
    let body = res.bytes().await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if !status.is_success() {
        bail!(
            "search ({}) answered {status}: {}",
            if service { "service" } else { "direct" },
            String::from_utf8_lossy(&body)
        );
    }
    Ok(Searched { ms, upstream })
}

/// W7: footprint figures gathered along the run.
pub fn w7(startup_ms: f64, idle_rss: u64, peak_rss: u64, peak_over: &str) -> Row {
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mut row = Row::new(
        "W7",
        format!("footprint: idle RSS, peak RSS over {peak_over}, start-up with migrations"),
        "idle RSS < 40 MB; peak RSS over W1-W5 < 200 MB; start-up with migrations < 300 ms",
    );
    row.figures.insert("startup_ms".into(), startup_ms);
    row.figures.insert("idle_rss_mb".into(), mb(idle_rss));
    row.figures.insert("peak_rss_mb".into(), mb(peak_rss));
    row.check(
        mb(idle_rss) < 40.0,
        format!("idle RSS {:.1} MB >= 40 MB", mb(idle_rss)),
    );
    row.check(
        mb(peak_rss) < 200.0,
        format!("peak RSS {:.1} MB >= 200 MB", mb(peak_rss)),
    );
    row.check(
        startup_ms < 300.0,
        format!("start-up {startup_ms:.0} ms >= 300 ms"),
    );
    row
}
