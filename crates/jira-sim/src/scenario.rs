//! Built-in scenarios: `demo` (Cloud or Data Center) and `empty` (benchmarks).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::*;

/// Names of the scenarios [`build`] knows.
pub const SCENARIOS: &[&str] = &["demo", "empty"];

fn user(
    account_id: &str,
    name: &str,
    display: &str,
    tz: Tz,
    admin: bool,
    dc: bool,
    idx: usize,
) -> User {
    let key = if dc {
        format!("JIRAUSER{}", 10100 + idx)
    } else {
        name.to_string()
    };
    User {
        account_id: if dc {
            key.clone()
        } else {
            account_id.to_string()
        },
        name: name.to_string(),
        key,
        display_name: display.to_string(),
        email: format!("{name}@example.com"),
        email_visible: true,
        tz,
        locale: "en_US".into(),
        api_token: format!("ATATT-{name}-api-token"),
        pat: format!("PAT-{name}-personal-access-token"),
        password: format!("{name}-password"),
        admin,
        can_log_work: true,
        active: true,
        account_type: "atlassian",
    }
}

fn opt(id: u64, value: &str) -> CfOption {
    CfOption {
        id: id.to_string(),
        value: value.into(),
        children: vec![],
    }
}

fn fields(dc: bool) -> Vec<FieldDef> {
    let mut f = vec![
        FieldDef {
            id: "customfield_10016".into(),
            name: if dc {
                "Story Points".into()
            } else {
                "Story point estimate".into()
            },
            kind: CfKind::Number,
        },
        FieldDef {
            id: "customfield_10020".into(),
            name: "Severity".into(),
            kind: CfKind::Select(vec![
                opt(10100, "Critical"),
                opt(10101, "Major"),
                opt(10102, "Minor"),
            ]),
        },
        FieldDef {
            id: "customfield_10021".into(),
            name: "Platforms".into(),
            kind: CfKind::MultiSelect(vec![
                opt(10110, "Web"),
                opt(10111, "iOS"),
                opt(10112, "Android"),
            ]),
        },
        FieldDef {
            id: "customfield_10022".into(),
            name: "Reviewer".into(),
            kind: CfKind::User,
        },
        FieldDef {
            id: "customfield_10023".into(),
            name: "Target date".into(),
            kind: CfKind::Date,
        },
        FieldDef {
            id: "customfield_10024".into(),
            name: "Region".into(),
            kind: CfKind::Cascading(vec![
                CfOption {
                    id: "10120".into(),
                    value: "EU".into(),
                    children: vec![opt(10121, "DE"), opt(10122, "FR")],
                },
                CfOption {
                    id: "10123".into(),
                    value: "US".into(),
                    children: vec![opt(10124, "East"), opt(10125, "West")],
                },
            ]),
        },
        FieldDef {
            id: "customfield_10025".into(),
            name: "Customer reference".into(),
            kind: CfKind::Text,
        },
    ];
    if dc {
        f.push(FieldDef {
            id: "customfield_10100".into(),
            name: "Epic Link".into(),
            kind: CfKind::EpicLink,
        });
        f.push(FieldDef {
            id: "customfield_10101".into(),
            name: "Epic Name".into(),
            kind: CfKind::EpicName,
        });
    }
    f
}

fn issue_types(prefix: u64, scope: Option<u64>) -> Vec<IssueType> {
    let t = |off: u64, name: &str, desc: &str, subtask: bool, level: i32, avatar: u64| IssueType {
        id: (prefix + off).to_string(),
        name: name.into(),
        description: desc.into(),
        subtask,
        level,
        avatar_id: avatar,
        scope_project: scope,
    };
    vec![
        t(
            0,
            "Epic",
            "A big user story that needs to be broken down.",
            false,
            1,
            10307,
        ),
        t(
            1,
            "Story",
            "Functionality or a feature expressed as a user goal.",
            false,
            0,
            10315,
        ),
        t(
            2,
            "Task",
            "A small, distinct piece of work.",
            false,
            0,
            10318,
        ),
        t(3, "Bug", "A problem or error.", false, 0, 10303),
        t(
            4,
            "Sub-task",
            "A small piece of work that's part of a larger task.",
            true,
            -1,
            10316,
        ),
    ]
}

fn statuses() -> Vec<Status> {
    vec![
        Status {
            id: "10000".into(),
            name: "To Do".into(),
            description: "".into(),
            category: 2,
        },
        Status {
            id: "3".into(),
            name: "In Progress".into(),
            description: "This issue is being actively worked on at the moment by the assignee."
                .into(),
            category: 4,
        },
        Status {
            id: "10001".into(),
            name: "In Review".into(),
            description: "".into(),
            category: 4,
        },
        Status {
            id: "10002".into(),
            name: "Done".into(),
            description: "".into(),
            category: 3,
        },
    ]
}

fn priorities() -> Vec<Priority> {
    let p = |id: &str, name: &str, color: &str, icon: &str, rank: usize| Priority {
        id: id.into(),
        name: name.into(),
        color: color.into(),
        icon: icon.into(),
        rank,
    };
    vec![
        p("1", "Highest", "#d04437", "highest", 1),
        p("2", "High", "#f15C75", "high", 2),
        p("3", "Medium", "#f79232", "medium", 3),
        p("4", "Low", "#707070", "low", 4),
        p("5", "Lowest", "#999999", "lowest", 5),
    ]
}

fn screens(
    types: &[IssueType],
    per_name: &[(&str, &[(&str, bool)])],
) -> BTreeMap<String, Vec<(String, bool)>> {
    let mut m = BTreeMap::new();
    for t in types {
        let list = per_name
            .iter()
            .find(|(n, _)| *n == t.name)
            .map(|(_, l)| l.iter().map(|(f, r)| (f.to_string(), *r)).collect())
            .unwrap_or_default();
        m.insert(t.id.clone(), list);
    }
    m
}

const SP: &str = "customfield_10016";
const SEV: &str = "customfield_10020";
const PLAT: &str = "customfield_10021";
const REV: &str = "customfield_10022";
const TGT: &str = "customfield_10023";
const REG: &str = "customfield_10024";
const CREF: &str = "customfield_10025";
const ELINK: &str = "customfield_10100";
const ENAME: &str = "customfield_10101";

fn uuid_from(rng: &mut StdRng) -> String {
    let bytes: [u8; 16] = rng.gen();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Builds a scenario. `None` if the name is unknown.
pub fn build(name: &str, flavor: Flavor, seed: u64, now: DateTime<Utc>) -> Option<World> {
    if !SCENARIOS.contains(&name) {
        return None;
    }
    let dc = flavor == Flavor::DataCenter;
    let mut rng = StdRng::seed_from_u64(seed);
    let sites = if dc {
        vec![Site {
            slug: "jira".into(),
            name: "Jira Data Center".into(),
            cloud_id: String::new(),
        }]
    } else {
        vec![
            Site {
                slug: "acme".into(),
                name: "Acme".into(),
                cloud_id: uuid_from(&mut rng),
            },
            Site {
                slug: "globex".into(),
                name: "Globex".into(),
                cloud_id: uuid_from(&mut rng),
            },
        ]
    };
    let mut users = vec![
        user(
            "5b10ac8d82e05b22cc7d4e01",
            "alice",
            "Alice Adler",
            chrono_tz::Europe::Berlin,
            true,
            dc,
            0,
        ),
        user(
            "5b10ac8d82e05b22cc7d4e02",
            "bob",
            "Bob Brown",
            chrono_tz::America::New_York,
            false,
            dc,
            1,
        ),
        user(
            "5b10ac8d82e05b22cc7d4e03",
            "kiri",
            "Kiri Tane",
            chrono_tz::Pacific::Auckland,
            false,
            dc,
            2,
        ),
        user(
            "5b10ac8d82e05b22cc7d4e04",
            "kai",
            "Kai Makoa",
            chrono_tz::Pacific::Honolulu,
            false,
            dc,
            3,
        ),
        user(
            "5b10ac8d82e05b22cc7d4e05",
            "vera",
            "Vera Viewer",
            chrono_tz::UTC,
            false,
            dc,
            4,
        ),
        user(
            "5b10ac8d82e05b22cc7d4e06",
            "olaf",
            "Olaf Gone",
            chrono_tz::Europe::Oslo,
            false,
            dc,
            5,
        ),
    ];
    // Vera: hidden e-mail, may not log work, cannot see OPS.
    users[4].email_visible = false;
    users[4].can_log_work = false;
    users[5].active = false;
    let vera = users[4].account_id.clone();
    let alice = users[0].account_id.clone();

    let mut types = issue_types(10000, None);
    let mut projects = Vec::new();
    let cm_screens: Vec<(&str, &[(&str, bool)])> = if dc {
        vec![
            ("Epic", &[(ENAME, true), (TGT, false)]),
            (
                "Story",
                &[(ELINK, false), (SP, false), (REV, false), (TGT, false)],
            ),
            (
                "Task",
                &[
                    (ELINK, false),
                    (SP, false),
                    (REV, false),
                    (CREF, false),
                    (REG, false),
                ],
            ),
            (
                "Bug",
                &[
                    (ELINK, false),
                    (SEV, true),
                    (PLAT, false),
                    (REG, false),
                    (REV, false),
                ],
            ),
            ("Sub-task", &[(REV, false)]),
        ]
    } else {
        vec![
            ("Epic", &[(TGT, false)]),
            ("Story", &[(SP, false), (REV, false), (TGT, false)]),
            (
                "Task",
                &[(SP, false), (REV, false), (CREF, false), (REG, false)],
            ),
            (
                "Bug",
                &[(SEV, true), (PLAT, false), (REG, false), (REV, false)],
            ),
            ("Sub-task", &[(REV, false)]),
        ]
    };
    let global_ids: Vec<String> = types.iter().map(|t| t.id.clone()).collect();
    if name == "demo" || name == "empty" {
        if dc {
            projects.push(Project {
                id: 10000,
                key: "WEB".into(),
                name: "Web Storefront".into(),
                site: 0,
                style: Style::CompanyManaged,
                workflow: WorkflowKind::Open,
                issue_types: global_ids.clone(),
                lead: alice.clone(),
                next_num: 1,
                hidden_from: vec![],
                screens: screens(&types, &cm_screens),
                description: "Customer-facing web shop.".into(),
            });
        } else {
            let tm_types = issue_types(10010, Some(10000));
            let tm_screens: Vec<(&str, &[(&str, bool)])> = vec![
                ("Story", &[(SP, false), (PLAT, false)]),
                ("Task", &[(SP, false)]),
                ("Bug", &[(PLAT, false), (SEV, false)]),
            ];
            projects.push(Project {
                id: 10000,
                key: "WEB".into(),
                name: "Web Storefront".into(),
                site: 0,
                style: Style::TeamManaged,
                workflow: WorkflowKind::Open,
                issue_types: tm_types.iter().map(|t| t.id.clone()).collect(),
                lead: alice.clone(),
                next_num: 1,
                hidden_from: vec![],
                screens: screens(&tm_types, &tm_screens),
                description: "Customer-facing web shop (team-managed).".into(),
            });
            types.extend(tm_types);
        }
        projects.push(Project {
            id: 10001,
            key: "OPS".into(),
            name: "Operations".into(),
            site: 0,
            style: Style::CompanyManaged,
            workflow: WorkflowKind::Strict,
            issue_types: global_ids.clone(),
            lead: alice.clone(),
            next_num: 1,
            hidden_from: vec![vera.clone()],
            screens: screens(&types, &cm_screens),
            description: "Infrastructure and operations (company-managed).".into(),
        });
        if !dc {
            projects.push(Project {
                id: 10002,
                key: "GLX".into(),
                name: "Globex Core".into(),
                site: 1,
                style: Style::CompanyManaged,
                workflow: WorkflowKind::Strict,
                issue_types: global_ids.clone(),
                lead: alice.clone(),
                next_num: 1,
                hidden_from: vec![],
                screens: screens(&types, &[("Task", &[(SP, false)])]),
                description: "The Globex site's project.".into(),
            });
        }
    }

    let mut world = World {
        flavor,
        scenario: name.to_string(),
        sites,
        users,
        issue_types: types,
        statuses: statuses(),
        priorities: priorities(),
        fields: fields(dc),
        projects,
        issues: BTreeMap::new(),
        worklogs: BTreeMap::new(),
        deleted_worklogs: vec![],
        next_issue_id: 10000,
        next_worklog_id: 10000,
        next_comment_id: 10000,
        next_history_id: 10000,
        next_link_id: 10000,
        worklog_updated: BTreeMap::new(),
    };
    if name == "demo" {
        seed_issues(&mut world, &mut rng, now);
    }
    Some(world)
}

const WORDS: &[&str] = &[
    "checkout", "login", "payment", "search", "cart", "profile", "invoice", "export", "backup",
    "deploy", "cache", "latency", "timeout", "banner", "mobile", "report", "webhook", "queue",
];

fn seed_issues(w: &mut World, rng: &mut StdRng, now: DateTime<Utc>) {
    let active: Vec<String> = w
        .users
        .iter()
        .filter(|u| u.active)
        .map(|u| u.account_id.clone())
        .collect();
    let plan: Vec<(String, usize, usize, usize)> = w
        .projects
        .iter()
        .map(|p| {
            let (epics, base, subs) = match p.key.as_str() {
                "WEB" => (2, 12, 4),
                "OPS" => (2, 10, 3),
                _ => (0, 5, 0),
            };
            (p.key.clone(), epics, base, subs)
        })
        .collect();
    for (pkey, epics, base, subs) in plan {
        let Some(pidx) = w.projects.iter().position(|p| p.key == pkey) else {
            continue;
        };
        let type_ids = w.projects[pidx].issue_types.clone();
        let type_named = |w: &World, n: &str| -> String {
            type_ids
                .iter()
                .find(|id| w.issue_type(id).is_some_and(|t| t.name == n))
                .cloned()
                .unwrap_or_default()
        };
        let mut epic_ids = vec![];
        let mut base_ids = vec![];
        for i in 0..(epics + base + subs) {
            let (tname, parent) = if i < epics {
                ("Epic", None)
            } else if i < epics + base {
                let t = ["Story", "Task", "Bug", "Task"][i % 4];
                let parent = if !epic_ids.is_empty() && i % 3 != 0 {
                    Some(epic_ids[i % epic_ids.len()])
                } else {
                    None
                };
                (t, parent)
            } else {
                ("Sub-task", base_ids.get(i % base_ids.len().max(1)).copied())
            };
            let t = type_named(w, tname);
            let age_min = rng.gen_range(60..(60 * 24 * 40)) as i64;
            let created = now - Duration::minutes(age_min);
            let updated = created + Duration::minutes(rng.gen_range(0..age_min.max(1)));
            let status = ["10000", "10000", "3", "10001", "10002"][rng.gen_range(0..5)].to_string();
            let assignee = if rng.gen_bool(0.7) {
                Some(active[rng.gen_range(0..active.len())].clone())
            } else {
                None
            };
            let reporter = active[rng.gen_range(0..active.len())].clone();
            let summary = format!(
                "{} {} {}",
                match tname {
                    "Epic" => "Epic:",
                    "Bug" => "Fix",
                    "Sub-task" => "Check",
                    _ => "Improve",
                },
                WORDS[rng.gen_range(0..WORDS.len())],
                WORDS[rng.gen_range(0..WORDS.len())]
            );
            let mut custom = BTreeMap::new();
            if tname == "Bug" {
                custom.insert(SEV.to_string(), CfValue::Option("10101".into()));
            }
            if tname == "Epic" && w.flavor == Flavor::DataCenter {
                custom.insert(ENAME.to_string(), CfValue::Text(summary.clone()));
            }
            let (parent_field, epic_link) = match (w.flavor, tname, parent) {
                (Flavor::DataCenter, "Story" | "Task" | "Bug", Some(e)) => (None, Some(e)),
                (_, _, p) => (p, None),
            };
            if let Some(e) = epic_link {
                custom.insert(ELINK.to_string(), CfValue::Issue(e));
            }
            let id = w.next_issue_id;
            w.next_issue_id += 1;
            let num = w.projects[pidx].next_num;
            w.projects[pidx].next_num += 1;
            let done = status == "10002";
            let labels = if i % 5 == 0 {
                vec!["customer".to_string()]
            } else {
                vec![]
            };
            let issue = Issue {
                id,
                key: format!("{pkey}-{num}"),
                project_id: w.projects[pidx].id,
                issuetype: t,
                summary,
                description: Some(RichText::Plain(format!(
                    "Seeded issue {num} of project {pkey}."
                ))),
                status,
                priority: ["2", "3", "3", "4"][rng.gen_range(0..4)].to_string(),
                assignee,
                reporter: Some(reporter.clone()),
                creator: reporter,
                labels,
                parent: parent_field,
                duedate: None,
                custom,
                created,
                updated,
                status_changed: updated,
                resolution_date: done.then_some(updated),
                properties: BTreeMap::new(),
                comments: vec![],
                remote_links: vec![],
                changelog: vec![],
                indexed_at: created,
            };
            if i < epics {
                epic_ids.push(id);
            } else if i < epics + base {
                base_ids.push(id);
            }
            w.issues.insert(id, issue);
        }
    }
}
