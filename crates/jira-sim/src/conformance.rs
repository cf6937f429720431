//! Checks of simulator and client output against Atlassian's official schemas.
//!
//! The checks themselves live in the repository's `tests/conformance/` folder and run on
//! the tools its `setup.sh` installs from the package registries (Node.js with
//! `@atlaskit/adf-schema` and `ajv`, a Python venv with `openapi-schema-validator` and
//! the `jira` library). This module drives them from Rust tests:
//!
//! - [`validate_adf`] judges Atlassian Document Format documents against the official
//!   ADF JSON schema (`@atlaskit/adf-schema`, `dist/json-schema/v1/full.json`);
//! - [`validate_exchanges`] judges a jira-sim recording (see `SimConfig::record`) against
//!   the operation schemas of the Cloud or Data Center OpenAPI document.
//!
//! The first call in a process runs `setup.sh` (a fast no-op once installed). The
//! folder is found at `<workspace>/tests/conformance`, or at `JIRA_CONFORMANCE_DIR` when
//! that is set; the OpenAPI documents at `../shared/jira/openapi` next to the repository,
//! or at `JIRA_OPENAPI_DIR`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde_json::Value;

/// Why a conformance check could not be carried out. A document or exchange that fails
/// its schema is not an error: it is reported in the result.
#[derive(Debug)]
pub enum ConformanceError {
    /// A tool the checks need is not installed (`node`, `python3`, `bash`).
    ToolMissing {
        /// The program that was not found.
        tool: &'static str,
        /// What to do about it.
        hint: &'static str,
    },
    /// `setup.sh` failed; the text holds its diagnostics.
    Setup(String),
    /// A checker ran but failed to judge its input (exit status and its stderr).
    Checker {
        /// Which checker.
        tool: &'static str,
        /// Exit status, if it exited.
        status: Option<i32>,
        /// Its diagnostics.
        stderr: String,
    },
    /// A checker's output could not be read.
    Output(String),
    /// Reading or writing a file failed.
    Io(std::io::Error),
}

impl fmt::Display for ConformanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConformanceError::ToolMissing { tool, hint } => {
                write!(f, "`{tool}` was not found on PATH: {hint}")
            }
            ConformanceError::Setup(msg) => write!(f, "conformance setup failed: {msg}"),
            ConformanceError::Checker {
                tool,
                status,
                stderr,
            } => match status {
                Some(code) => write!(f, "{tool} failed with exit status {code}: {stderr}"),
                None => write!(f, "{tool} was killed by a signal: {stderr}"),
            },
            ConformanceError::Output(msg) => write!(f, "unreadable checker output: {msg}"),
            ConformanceError::Io(err) => write!(f, "conformance I/O error: {err}"),
        }
    }
}

impl std::error::Error for ConformanceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConformanceError::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ConformanceError {
    fn from(err: std::io::Error) -> Self {
        ConformanceError::Io(err)
    }
}

/// The `tests/conformance` folder of the repository (or `JIRA_CONFORMANCE_DIR`).
pub fn conformance_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("JIRA_CONFORMANCE_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("tests")
        .join("conformance")
}

/// The Python interpreter of the conformance venv (after [`ensure_setup`]).
pub fn venv_python() -> PathBuf {
    conformance_dir().join(".venv").join("bin").join("python")
}

/// Runs `setup.sh` once per process (later calls return the first outcome).
pub fn ensure_setup() -> Result<(), ConformanceError> {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = SETUP.get_or_init(|| run_setup().map_err(|e| e.to_string()));
    outcome.clone().map_err(ConformanceError::Setup)
}

fn run_setup() -> Result<(), ConformanceError> {
    let script = conformance_dir().join("setup.sh");
    if !script.is_file() {
        return Err(ConformanceError::Setup(format!(
            "{} does not exist (set JIRA_CONFORMANCE_DIR)",
            script.display()
        )));
    }
    let output = run(
        Command::new("bash").arg(&script),
        "bash",
        "install bash to run tests/conformance/setup.sh",
    )?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ConformanceError::Setup(format!(
            "{} exited with {}: {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

fn run(
    cmd: &mut Command,
    tool: &'static str,
    hint: &'static str,
) -> Result<Output, ConformanceError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match cmd.output() {
        Ok(out) => Ok(out),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Err(ConformanceError::ToolMissing { tool, hint })
        }
        Err(err) => Err(ConformanceError::Io(err)),
    }
}

/// A scratch file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn create(prefix: &str, contents: &[u8]) -> Result<Self, ConformanceError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{prefix}-{}-{}-{nanos}.json",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(contents)?;
        Ok(TempFile(path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Judges each document against the official ADF JSON schema (`@atlaskit/adf-schema`).
///
/// Returns one entry per document, in order: `Ok(())` when it is valid, `Err` with the
/// schema's complaints otherwise. Fails only when the check cannot run (Node.js
/// missing, setup failed).
pub fn validate_adf(docs: &[Value]) -> Result<Vec<Result<(), String>>, ConformanceError> {
    if docs.is_empty() {
        return Ok(Vec::new());
    }
    // Fail with a clear message before trying to install anything with npm.
    run(
        Command::new("node").arg("--version"),
        "node",
        "install Node.js (18 or later) to validate ADF against @atlaskit/adf-schema",
    )?;
    ensure_setup()?;
    let input = serde_json::to_vec(&Value::Array(docs.to_vec()))
        .map_err(|e| ConformanceError::Output(e.to_string()))?;
    let file = TempFile::create("adf-docs", &input)?;
    let output = run(
        Command::new("node")
            .arg(conformance_dir().join("adf_validate.mjs"))
            .arg(&file.0),
        "node",
        "install Node.js (18 or later) to validate ADF against @atlaskit/adf-schema",
    )?;
    if !output.status.success() {
        return Err(ConformanceError::Checker {
            tool: "adf_validate.mjs",
            status: output.status.code(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let verdicts: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| ConformanceError::Output(format!("adf_validate.mjs: {e}")))?;
    let verdicts = verdicts
        .as_array()
        .ok_or_else(|| ConformanceError::Output("adf_validate.mjs: not an array".into()))?;
    if verdicts.len() != docs.len() {
        return Err(ConformanceError::Output(format!(
            "adf_validate.mjs judged {} documents, {} were sent",
            verdicts.len(),
            docs.len()
        )));
    }
    verdicts
        .iter()
        .map(|v| match v.get("valid").and_then(Value::as_bool) {
            Some(true) => Ok(Ok(())),
            Some(false) => {
                let errors: Vec<&str> = v
                    .get("errors")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                Ok(Err(errors.join("; ")))
            }
            None => Err(ConformanceError::Output(format!(
                "adf_validate.mjs: verdict without `valid`: {v}"
            ))),
        })
        .collect()
}

/// One documented operation the recording hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationReport {
    /// HTTP method, upper case.
    pub method: String,
    /// The document's path template, e.g. `/rest/api/3/issue/{issueIdOrKey}`.
    pub template: String,
    /// The document's `operationId`.
    pub operation_id: String,
    /// Whether the document marks the operation deprecated.
    pub deprecated: bool,
    /// Exchanges that hit it.
    pub count: u64,
    /// Exchanges by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Violations among them.
    pub violations: u64,
}

impl OperationReport {
    /// `"METHOD template"`, the key used by [`Report::covered`].
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

/// One exchange that does not conform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// HTTP method.
    pub method: String,
    /// The path as served (with any gateway or site prefix).
    pub path: String,
    /// The response status.
    pub status: u16,
    /// `"METHOD template"` of the matched operation; `None` when nothing matched.
    pub operation: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {} [{}]: {}",
            self.method,
            self.path,
            self.status,
            self.operation.as_deref().unwrap_or("no operation"),
            self.message
        )
    }
}

/// The verdict on a recording, as `tests/conformance/validate_exchanges.py` gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// `cloud` or `dc`.
    pub flavor: String,
    /// `info.version` of the OpenAPI document used.
    pub spec_version: String,
    /// Jira REST exchanges checked.
    pub exchanges: u64,
    /// Control-API and OAuth-server exchanges, not checked against the document.
    pub skipped: u64,
    /// Documented operations hit, sorted by template then method.
    pub operations: Vec<OperationReport>,
    /// `"METHOD /path"` requests that match no documented operation, with counts.
    pub unmatched: BTreeMap<String, u64>,
    /// Every violation (unmatched requests included).
    pub violations: Vec<Violation>,
    /// Undocumented error statuses and the like: worth a look, not a failure.
    pub warnings: Vec<Violation>,
    /// Systematic defects of the document corrected before validating, with counts.
    pub corrections: BTreeMap<String, u64>,
    /// The human-readable report.
    pub text: String,
}

impl Report {
    /// No violation and no unmatched request.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty() && self.unmatched.is_empty()
    }

    /// `"METHOD template"` of every documented operation the recording hit.
    pub fn covered(&self) -> BTreeSet<String> {
        self.operations.iter().map(OperationReport::key).collect()
    }

    /// `"METHOD template"` of the operations hit with the given status.
    pub fn covered_with_status(&self, status: u16) -> BTreeSet<String> {
        self.operations
            .iter()
            .filter(|op| op.statuses.contains_key(&status))
            .map(OperationReport::key)
            .collect()
    }
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn u64_field(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn violations(v: &Value, key: &str) -> Vec<Violation> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| Violation {
                    method: str_field(item, "method"),
                    path: str_field(item, "path"),
                    status: u16::try_from(u64_field(item, "status")).unwrap_or(0),
                    operation: item
                        .get("operation")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    message: str_field(item, "message"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parse_report(v: &Value, text: String) -> Result<Report, ConformanceError> {
    if !v.is_object() {
        return Err(ConformanceError::Output(
            "validate_exchanges.py: report is not an object".into(),
        ));
    }
    let operations = v
        .get("operations")
        .and_then(Value::as_array)
        .map(|ops| {
            ops.iter()
                .map(|op| OperationReport {
                    method: str_field(op, "method"),
                    template: str_field(op, "template"),
                    operation_id: str_field(op, "operation_id"),
                    deprecated: op
                        .get("deprecated")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    count: u64_field(op, "count"),
                    statuses: op
                        .get("statuses")
                        .and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .filter_map(|(k, n)| Some((k.parse().ok()?, n.as_u64()?)))
                                .collect()
                        })
                        .unwrap_or_default(),
                    violations: u64_field(op, "violations"),
                })
                .collect()
        })
        .unwrap_or_default();
    let unmatched = v
        .get("unmatched")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|u| (str_field(u, "request"), u64_field(u, "count")))
                .collect()
        })
        .unwrap_or_default();
    let corrections = v
        .get("corrections")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Report {
        flavor: str_field(v, "flavor"),
        spec_version: str_field(v, "spec_version"),
        exchanges: u64_field(v, "exchanges"),
        skipped: u64_field(v, "skipped"),
        operations,
        unmatched,
        violations: violations(v, "violations"),
        warnings: violations(v, "warnings"),
        corrections,
        text,
    })
}

fn run_validator(record: &Path, flavor: &str, json: bool) -> Result<Output, ConformanceError> {
    ensure_setup()?;
    let mut cmd = Command::new(venv_python());
    cmd.arg(conformance_dir().join("validate_exchanges.py"))
        .arg(record)
        .arg("--flavor")
        .arg(flavor);
    if json {
        cmd.arg("--json");
    }
    let output = run(
        &mut cmd,
        "python3",
        "the conformance venv is missing: run tests/conformance/setup.sh",
    )?;
    // 0: clean, 1: violations found (still a report); anything else: could not judge.
    match output.status.code() {
        Some(0) | Some(1) => Ok(output),
        code => Err(ConformanceError::Checker {
            tool: "validate_exchanges.py",
            status: code,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        }),
    }
}

/// Validates every exchange of a jira-sim recording against the OpenAPI document of the
/// flavor (`"cloud"` or `"dc"`).
pub fn validate_exchanges(record: &Path, flavor: &str) -> Result<Report, ConformanceError> {
    let json = run_validator(record, flavor, true)?;
    let value: Value = serde_json::from_slice(&json.stdout)
        .map_err(|e| ConformanceError::Output(format!("validate_exchanges.py: {e}")))?;
    let text = run_validator(record, flavor, false)?;
    parse_report(&value, String::from_utf8_lossy(&text.stdout).into_owned())
}

/// Maps served routes (`(METHOD, "/rest/api/3/issue/{issueIdOrKey}")`) to the documented
/// operation each one serves in the flavor's OpenAPI document (`"METHOD template"`), or
/// `None` when the document has no such operation. Control and OAuth routes are left out
/// of the result.
pub fn map_routes(
    routes: &[(String, String)],
    flavor: &str,
) -> Result<BTreeMap<(String, String), Option<String>>, ConformanceError> {
    ensure_setup()?;
    let lines: Vec<String> = routes
        .iter()
        .map(|(method, path)| format!("{} {}", method.to_uppercase(), path))
        .collect();
    let file = TempFile::create("sim-routes", lines.join("\n").as_bytes())?;
    let output = run(
        Command::new(venv_python())
            .arg(conformance_dir().join("validate_exchanges.py"))
            .arg("--map-routes")
            .arg(&file.0)
            .arg("--flavor")
            .arg(flavor),
        "python3",
        "the conformance venv is missing: run tests/conformance/setup.sh",
    )?;
    if !output.status.success() {
        return Err(ConformanceError::Checker {
            tool: "validate_exchanges.py",
            status: output.status.code(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let value: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| ConformanceError::Output(format!("validate_exchanges.py: {e}")))?;
    let map = value
        .as_object()
        .ok_or_else(|| ConformanceError::Output("validate_exchanges.py: not an object".into()))?;
    Ok(routes
        .iter()
        .filter_map(|(method, path)| {
            let line = format!("{} {}", method.to_uppercase(), path);
            let op = map.get(&line)?;
            Some((
                (method.to_uppercase(), path.clone()),
                op.as_str().map(str::to_string),
            ))
        })
        .collect())
}
