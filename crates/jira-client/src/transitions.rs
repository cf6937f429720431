//! Transitions: list, do, and path-finding to a status or status category.
//!
//! Jira only shows the transitions available from an issue's *current* status, so the
//! workflow graph is learned as the client walks it (and remembered per project and
//! issue type). [`JiraClient::transition_to`] takes a direct transition when one leads to
//! the target, else the shortest known route, else explores the unvisited status whose
//! category is closest to the target; it re-reads the issue after every hop.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::Deserialize;
use serde_json::Value;

use crate::client::{JiraClient, Req};
use crate::error::{Error, Result};
use crate::issues::GetIssue;
use crate::models::{Status, Transition};

/// A status category to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// `new` ("To Do").
    ToDo,
    /// `indeterminate` ("In Progress").
    InProgress,
    /// `done` ("Done").
    Done,
}

impl Category {
    /// Jira's category key.
    pub fn key(self) -> &'static str {
        match self {
            Category::ToDo => "new",
            Category::InProgress => "indeterminate",
            Category::Done => "done",
        }
    }
    fn rank(self) -> i32 {
        match self {
            Category::ToDo => 0,
            Category::InProgress => 1,
            Category::Done => 2,
        }
    }
}

fn rank_of_key(k: Option<&str>) -> Option<i32> {
    match k? {
        "new" => Some(0),
        "indeterminate" => Some(1),
        "done" => Some(2),
        _ => None,
    }
}

/// Where [`JiraClient::transition_to`] should take an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A status, by name (case-insensitive).
    Status(String),
    /// Any status of a category.
    Category(Category),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Status(s) => write!(f, "status {s:?}"),
            Target::Category(c) => write!(f, "category {:?}", c.key()),
        }
    }
}

impl Target {
    fn matches(&self, s: &Status) -> bool {
        match self {
            Target::Status(name) => s.name.eq_ignore_ascii_case(name),
            Target::Category(c) => s.category_key() == Some(c.key()),
        }
    }
}

/// What [`JiraClient::transition_to`] did.
#[derive(Debug, Clone)]
pub struct TransitionOutcome {
    /// Status reached.
    pub status: Status,
    /// Names of the transitions taken, in order (empty when already there).
    pub path: Vec<String>,
}

/// Transitions learned per status of one workflow.
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownWorkflow {
    edges: HashMap<String, Vec<(String, String, Status)>>,
}

#[derive(Debug, Deserialize)]
struct Transitions {
    #[serde(default)]
    transitions: Vec<Transition>,
}

const MAX_HOPS: usize = 12;

impl JiraClient {
    /// `GET /issue/{key}/transitions`.
    pub async fn transitions(&self, key: &str) -> Result<Vec<Transition>> {
        let t: Transitions = self.call(Req::get(&["issue", key, "transitions"])).await?;
        Ok(t.transitions)
    }

    /// `POST /issue/{key}/transitions` with an optional `fields` object (screen fields).
    /// Not retried after it may have been sent (a repeat could move the issue twice).
    pub async fn do_transition(
        &self,
        key: &str,
        transition_id: &str,
        fields: Option<Value>,
    ) -> Result<()> {
        let mut body = serde_json::json!({ "transition": { "id": transition_id } });
        if let Some(f) = fields {
            body["fields"] = f;
        }
        self.call_empty(
            Req::post(&["issue", key, "transitions"])
                .issue_write(key)
                .json_value(body),
        )
        .await
        .map(|_| ())
    }

    async fn current_status(&self, key: &str) -> Result<(Status, String)> {
        let issue = self
            .get_issue(
                key,
                &GetIssue {
                    fields: vec!["status".into(), "project".into(), "issuetype".into()],
                    ..GetIssue::default()
                },
            )
            .await?;
        let status = issue.status().ok_or_else(|| Error::Decode {
            ctx: crate::error::RequestCtx {
                method: http::Method::GET,
                path: format!("issue/{key}"),
            },
            message: "issue has no status field".into(),
        })?;
        let project = issue.project().map(|p| p.key).unwrap_or_default();
        let it = issue.issue_type().map(|t| t.id).unwrap_or_default();
        Ok((status, format!("{project}/{it}")))
    }

    /// Move an issue to a status or status category, walking the workflow as needed.
    /// Fails with [`Error::NoTransitionPath`] (listing the available transitions) when
    /// the target cannot be reached.
    pub async fn transition_to(&self, key: &str, target: &Target) -> Result<TransitionOutcome> {
        let (mut current, wf_key) = self.current_status(key).await?;
        let mut path = Vec::new();
        let mut visited: HashSet<String> = HashSet::new();
        visited.insert(current.id.clone());
        for _ in 0..=MAX_HOPS {
            if target.matches(&current) {
                return Ok(TransitionOutcome {
                    status: current,
                    path,
                });
            }
            let available = self.transitions(key).await?;
            let wf = {
                let mut all = self.inner.workflows.lock();
                let wf = all.entry(wf_key.clone()).or_default();
                wf.edges.insert(
                    current.id.clone(),
                    available
                        .iter()
                        .map(|t| (t.id.clone(), t.name.clone(), t.to.clone()))
                        .collect(),
                );
                wf.clone()
            };
            let Some(hop) = plan(&wf, &current, target, &visited) else {
                return Err(Error::NoTransitionPath {
                    issue: key.to_string(),
                    target: target.to_string(),
                    current: current.name.clone(),
                    available: available
                        .iter()
                        .map(|t| format!("{} → {}", t.name, t.to.name))
                        .collect(),
                });
            };
            let Some(t) = available.iter().find(|t| t.id == hop) else {
                break;
            };
            self.do_transition(key, &t.id, None).await?;
            path.push(t.name.clone());
            let (now, _) = self.current_status(key).await?;
            current = now;
            visited.insert(current.id.clone());
        }
        Err(Error::NoTransitionPath {
            issue: key.to_string(),
            target: target.to_string(),
            current: current.name.clone(),
            available: Vec::new(),
        })
    }
}

/// The id of the transition to take from `current`, or None when the target is
/// unreachable with what is known and nothing unexplored remains.
fn plan(
    wf: &KnownWorkflow,
    current: &Status,
    target: &Target,
    visited: &HashSet<String>,
) -> Option<String> {
    // BFS over known edges, remembering the first hop of each route.
    let mut first_hop: HashMap<String, (String, usize)> = HashMap::new();
    let mut statuses: HashMap<String, Status> = HashMap::new();
    let mut queue = VecDeque::new();
    queue.push_back((current.id.clone(), None::<String>, 0usize));
    let mut seen: HashSet<String> = HashSet::new();
    seen.insert(current.id.clone());
    while let Some((node, hop, dist)) = queue.pop_front() {
        for (tid, _name, to) in wf.edges.get(&node).into_iter().flatten() {
            if seen.insert(to.id.clone()) {
                let h = hop.clone().unwrap_or_else(|| tid.clone());
                if target.matches(to) {
                    return Some(h);
                }
                first_hop.insert(to.id.clone(), (h.clone(), dist + 1));
                statuses.insert(to.id.clone(), to.clone());
                queue.push_back((to.id.clone(), Some(h), dist + 1));
            }
        }
    }
    // Explore: unvisited statuses whose transitions are unknown, nearest first, then the
    // one whose category is closest to the target.
    let target_rank = match target {
        Target::Category(c) => c.rank(),
        Target::Status(name) => statuses
            .values()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .and_then(|s| rank_of_key(s.category_key()))
            .unwrap_or(1),
    };
    first_hop
        .iter()
        .filter(|(id, _)| !visited.contains(*id) && !wf.edges.contains_key(*id))
        .min_by_key(|(id, (_, dist))| {
            let r = statuses
                .get(*id)
                .and_then(|s| rank_of_key(s.category_key()))
                .unwrap_or(1);
            (*dist, (r - target_rank).abs(), (*id).clone())
        })
        .map(|(_, (hop, _))| hop.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn st(id: &str, name: &str, cat: &str) -> Status {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "statusCategory": {"key": cat}
        }))
        .unwrap()
    }

    #[test]
    fn plans_direct_known_and_exploratory_hops() {
        let todo = st("1", "To Do", "new");
        let prog = st("2", "In Progress", "indeterminate");
        let review = st("3", "In Review", "indeterminate");
        let done = st("4", "Done", "done");
        let mut wf = KnownWorkflow::default();
        wf.edges.insert(
            "1".into(),
            vec![("11".into(), "Start".into(), prog.clone())],
        );
        let visited: HashSet<String> = ["1".to_string()].into();
        // Unknown beyond In Progress: explore it.
        assert_eq!(
            plan(&wf, &todo, &Target::Category(Category::Done), &visited),
            Some("11".into())
        );
        // Once known, route through known edges.
        wf.edges.insert(
            "2".into(),
            vec![
                ("21".into(), "Review".into(), review.clone()),
                ("22".into(), "Back".into(), todo.clone()),
            ],
        );
        wf.edges.insert(
            "3".into(),
            vec![("31".into(), "Approve".into(), done.clone())],
        );
        assert_eq!(
            plan(&wf, &todo, &Target::Status("done".into()), &visited),
            Some("11".into())
        );
        assert_eq!(
            plan(&wf, &prog, &Target::Category(Category::Done), &visited),
            Some("21".into())
        );
        // Nothing leads anywhere new: unreachable.
        let mut dead = KnownWorkflow::default();
        dead.edges.insert("4".into(), vec![]);
        assert_eq!(
            plan(&dead, &done, &Target::Category(Category::ToDo), &visited),
            None
        );
    }
}
