//! Bulk input files: CSV (header row), JSON (an array of objects, or one object per
//! line) and YAML (a sequence of mappings). Every record keeps the line it starts on
//! so validation messages can name it.

use std::path::Path;

use serde_json::{Map, Value};

/// One record of an input file.
#[derive(Debug, Clone)]
pub struct Record {
    /// 1-based line where the record starts.
    pub line: usize,
    /// The record as a JSON object.
    pub value: Map<String, Value>,
}

/// A record that could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Read a file into records, by extension (`.csv`, `.json`/`.jsonl`, `.yaml`/`.yml`).
/// Records that are not objects are returned as invalid.
pub fn read(path: &Path) -> Result<(Vec<Record>, Vec<Invalid>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => parse_csv(&text),
        "json" | "jsonl" | "ndjson" => parse_json(&text),
        "yaml" | "yml" => parse_yaml(&text),
        other => Err(format!(
            "{}: unknown file type '{other}' (use .csv, .json or .yaml)",
            path.display()
        )),
    }
}

/// CSV with a header row; empty cells are left out. A `labels` cell is split on `;`
/// or `,`.
pub fn parse_csv(text: &str) -> Result<(Vec<Record>, Vec<Invalid>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("line 1: cannot read the CSV header: {e}"))?
        .clone();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for row in reader.records() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                bad.push(Invalid {
                    line,
                    message: format!("not valid CSV: {e}"),
                });
                continue;
            }
        };
        let line = row.position().map(|p| p.line() as usize).unwrap_or(0);
        if row.len() != headers.len() {
            bad.push(Invalid {
                line,
                message: format!("{} cells, the header has {}", row.len(), headers.len()),
            });
            continue;
        }
        let mut map = Map::new();
        for (h, cell) in headers.iter().zip(row.iter()) {
            if cell.is_empty() {
                continue;
            }
            let v = if h == "labels" || h == "platforms" {
                Value::Array(
                    cell.split([';', ','])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                )
            } else {
                Value::String(cell.to_string())
            };
            map.insert(h.to_string(), v);
        }
        ok.push(Record { line, value: map });
    }
    Ok((ok, bad))
}

/// A JSON array of objects (each record's line is where its `{` is), or JSON lines.
pub fn parse_json(text: &str) -> Result<(Vec<Record>, Vec<Invalid>), String> {
    let trimmed = text.trim_start();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    if trimmed.starts_with('[') {
        let values: Vec<Value> = serde_json::from_str(text)
            .map_err(|e| format!("line {}: not valid JSON: {e}", e.line()))?;
        let lines = array_element_lines(text);
        for (i, v) in values.into_iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(0);
            push(&mut ok, &mut bad, line, v);
        }
    } else {
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(l) {
                Ok(v) => push(&mut ok, &mut bad, i + 1, v),
                Err(e) => bad.push(Invalid {
                    line: i + 1,
                    message: format!("not valid JSON: {e}"),
                }),
            }
        }
    }
    Ok((ok, bad))
}

/// A YAML sequence of mappings; a record's line is that of its `-` at column 0.
pub fn parse_yaml(text: &str) -> Result<(Vec<Record>, Vec<Invalid>), String> {
    let values: Vec<Value> = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        format!("line {line}: not valid YAML: {e}")
    })?;
    let starts: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with('-') && !l.starts_with("---"))
        .map(|(i, _)| i + 1)
        .collect();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        let line = starts.get(i).copied().unwrap_or(0);
        push(&mut ok, &mut bad, line, v);
    }
    Ok((ok, bad))
}

fn push(ok: &mut Vec<Record>, bad: &mut Vec<Invalid>, line: usize, v: Value) {
    match v {
        Value::Object(map) => ok.push(Record { line, value: map }),
        other => bad.push(Invalid {
            line,
            message: format!("expected an object, found {other}"),
        }),
    }
}

/// Lines on which the elements of a top-level JSON array start.
fn array_element_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut expecting = false;
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if expecting && depth == 1 && !c.is_whitespace() && c != ']' {
            out.push(line);
            expecting = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    expecting = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    out
}

/// A string field, trimmed, or `None` when missing or empty.
pub fn str_field<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Validate ticket records and turn them into bulk items. `source_kind` /
/// `source_id` columns (or a `source` object) name the host object.
pub fn ticket_items(
    records: Vec<Record>,
    default_project: bool,
    default_type: bool,
) -> (Vec<(usize, Value)>, Vec<Invalid>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for r in records {
        let mut m = r.value;
        let mut problems = Vec::new();
        if !m.contains_key("source") {
            let kind = str_field(&m, "source_kind").unwrap_or("cli").to_string();
            match str_field(&m, "source_id").map(str::to_string) {
                Some(id) => {
                    m.insert("source".into(), serde_json::json!({"kind": kind, "id": id}));
                }
                None => problems.push("source_id is missing".to_string()),
            }
            m.remove("source_kind");
            m.remove("source_id");
        }
        match str_field(&m, "summary") {
            None => problems.push("summary is missing".to_string()),
            Some(s) if s.chars().count() > 255 => {
                problems.push("summary is longer than 255 characters".to_string())
            }
            Some(s) if s.contains('\n') => problems.push("summary has a line break".to_string()),
            _ => {}
        }
        if !default_project && str_field(&m, "project_key").is_none() {
            problems.push("project_key is missing (or pass --project)".to_string());
        }
        if !default_type && str_field(&m, "issue_type").is_none() {
            problems.push("issue_type is missing (or pass --type)".to_string());
        }
        if let Some(Value::String(l)) = m.get("labels") {
            let labels: Vec<Value> = l
                .split([';', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.into()))
                .collect();
            m.insert("labels".into(), Value::Array(labels));
        }
        if problems.is_empty() {
            ok.push((r.line, Value::Object(m)));
        } else {
            bad.push(Invalid {
                line: r.line,
                message: problems.join("; "),
            });
        }
    }
    (ok, bad)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn csv_lines_and_bad_rows() {
        let text = "source_id,summary,project_key\na,One,WEB\nb,,WEB\nc,Three,WEB\n";
        let (records, bad) = parse_csv(text).unwrap();
        assert!(bad.is_empty());
        let (ok, bad) = ticket_items(records, false, true);
        assert_eq!(ok.iter().map(|x| x.0).collect::<Vec<_>>(), vec![2, 4]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 3);
        assert!(bad[0].message.contains("summary"));
    }

    #[test]
    fn json_array_lines() {
        let text = "[\n  {\"a\": \"[x,\"},\n  {\"b\": 1},\n  3\n]\n";
        let (ok, bad) = parse_json(text).unwrap();
        assert_eq!(ok.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(
            bad,
            vec![Invalid {
                line: 4,
                message: "expected an object, found 3".into()
            }]
        );
    }

    #[test]
    fn yaml_lines() {
        let text = "- summary: a\n  source_id: x\n- summary: b\n  source_id: y\n";
        let (ok, bad) = parse_yaml(text).unwrap();
        assert!(bad.is_empty());
        assert_eq!(ok.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 3]);
    }

    mod props {
        #![allow(clippy::unwrap_used)]
        use super::super::*;
        use proptest::prelude::*;

        /// Text dense in what CSV, JSON and YAML give meaning to.
        fn hostile_text() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just(",".to_owned()),
                    Just("\"".to_owned()),
                    Just("\n".to_owned()),
                    Just("\r\n".to_owned()),
                    Just("- ".to_owned()),
                    Just("---\n".to_owned()),
                    Just(": ".to_owned()),
                    Just("[".to_owned()),
                    Just("]".to_owned()),
                    Just("{".to_owned()),
                    Just("}".to_owned()),
                    Just("&a ".to_owned()),
                    Just("*a ".to_owned()),
                    Just("!!binary ".to_owned()),
                    Just("\\".to_owned()),
                    Just("#".to_owned()),
                    Just("  ".to_owned()),
                    Just("\t".to_owned()),
                    Just("\u{feff}".to_owned()),
                    "[a-z_]{1,6}",
                    "\\PC{1,4}",
                ],
                0..30,
            )
            .prop_map(|parts| parts.concat())
        }

        fn cell() -> impl Strategy<Value = String> {
            "\\PC{0,12}|[ ,;\"\n]{0,4}"
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn parsers_never_panic(text in hostile_text()) {
                let parsed = [parse_csv(&text), parse_json(&text), parse_yaml(&text)];
                for (ok, _) in parsed.into_iter().flatten() {
                    let _ = ticket_items(ok, false, false);
                }
            }

            #[test]
            fn csv_cells_round_trip(rows in proptest::collection::vec(proptest::collection::vec(cell(), 3), 0..8)) {
                let mut w = csv::Writer::from_writer(vec![]);
                w.write_record(["source_id", "summary", "labels"]).unwrap();
                for r in &rows {
                    w.write_record(r).unwrap();
                }
                let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
                let (ok, bad) = parse_csv(&text).unwrap();
                // Three cells are never an empty line: every row is a record, blank
                // ones as empty records.
                let kept: Vec<&Vec<String>> = rows.iter().collect();
                prop_assert!(bad.is_empty(), "{:?}", bad);
                prop_assert_eq!(ok.len(), kept.len(), "{}", text);
                for (rec, row) in ok.iter().zip(kept) {
                    for (h, c) in ["source_id", "summary"].iter().zip(row) {
                        let want = c.trim();
                        prop_assert_eq!(rec.value.get(*h).and_then(Value::as_str).unwrap_or(""), want);
                    }
                    let labels: Vec<&str> = row[2]
                        .split([';', ','])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect();
                    let got: Vec<&str> = rec
                        .value
                        .get("labels")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    prop_assert_eq!(got, labels);
                    // The line points into the file.
                    prop_assert!(rec.line >= 2 && rec.line <= text.lines().count());
                }
            }

            #[test]
            fn json_and_yaml_records_round_trip(
                records in proptest::collection::vec(
                    proptest::collection::btree_map("[a-z_]{1,8}", cell(), 0..4), 0..6),
                bare in proptest::collection::vec(cell(), 0..2),
            ) {
                let values: Vec<Value> = records
                    .iter()
                    .map(|m| Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()))
                    .chain(bare.iter().map(|s| Value::String(s.clone())))
                    .collect();
                let json_text = serde_json::to_string_pretty(&values).unwrap();
                let yaml_text = serde_yaml::to_string(&values).unwrap();
                for (text, parsed) in [(&json_text, parse_json(&json_text)), (&yaml_text, parse_yaml(&yaml_text))] {
                    let (ok, bad) = parsed.unwrap();
                    prop_assert_eq!(ok.len(), records.len(), "{}", text);
                    prop_assert_eq!(bad.len(), bare.len(), "{}", text);
                    let lines: Vec<&str> = text.lines().collect();
                    for (rec, want) in ok.iter().zip(&values) {
                        prop_assert_eq!(&Value::Object(rec.value.clone()), want);
                        // Each record names the line it starts on.
                        let line = lines.get(rec.line.wrapping_sub(1)).copied().unwrap_or("");
                        prop_assert!(line.trim_start().starts_with('{') || line.starts_with('-'), "line {} of {}", rec.line, text);
                    }
                }
            }
        }
    }
}
