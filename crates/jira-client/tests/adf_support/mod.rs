//! Structural checks of ADF documents, mirroring the rules of the official schema
//! (`@atlaskit/adf-schema`, `full.json`) that the converters must respect.

#![allow(dead_code)]

use std::collections::HashSet;

use serde_json::Value;

const INLINE: &[&str] = &[
    "text",
    "hardBreak",
    "mention",
    "emoji",
    "inlineCard",
    "status",
    "date",
];
const DOC_BLOCKS: &[&str] = &[
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "taskList",
    "codeBlock",
    "blockquote",
    "rule",
    "table",
    "panel",
    "expand",
];
const LIST_ITEM_BLOCKS: &[&str] = &[
    "paragraph",
    "bulletList",
    "orderedList",
    "taskList",
    "codeBlock",
];
const QUOTE_BLOCKS: &[&str] = &["paragraph", "bulletList", "orderedList", "codeBlock"];
const CELL_BLOCKS: &[&str] = &[
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "taskList",
    "codeBlock",
    "blockquote",
    "rule",
    "panel",
];
const PANEL_BLOCKS: &[&str] = &[
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "taskList",
    "codeBlock",
    "rule",
];
const TEXT_MARKS: &[&str] = &[
    "strong",
    "em",
    "strike",
    "underline",
    "link",
    "subsup",
    "textColor",
    "code",
];

/// Checks a document; returns the first violation with its JSON path.
pub fn check_document(doc: &Value) -> Result<(), String> {
    let obj = doc.as_object().ok_or("document is not an object")?;
    for key in obj.keys() {
        if !["version", "type", "content"].contains(&key.as_str()) {
            return Err(format!("unexpected key {key:?} on doc"));
        }
    }
    if doc.get("version") != Some(&Value::from(1)) {
        return Err("version must be 1".into());
    }
    if doc.get("type").and_then(Value::as_str) != Some("doc") {
        return Err("type must be doc".into());
    }
    let content = doc
        .get("content")
        .and_then(Value::as_array)
        .ok_or("doc.content must be an array")?;
    let mut ids = HashSet::new();
    check_children(content, DOC_BLOCKS, "doc", &mut ids, 0)
}

fn kind(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or("")
}

fn check_children(
    children: &[Value],
    allowed: &[&str],
    path: &str,
    ids: &mut HashSet<String>,
    depth: usize,
) -> Result<(), String> {
    for (i, child) in children.iter().enumerate() {
        let k = kind(child);
        let p = format!("{path}/{i}:{k}");
        if !allowed.contains(&k) {
            return Err(format!("{p}: not allowed here (allowed: {allowed:?})"));
        }
        check_node(child, &p, ids, depth + 1)?;
    }
    Ok(())
}

fn content_of<'a>(node: &'a Value, path: &str, required: bool) -> Result<&'a [Value], String> {
    match node.get("content") {
        Some(Value::Array(items)) => Ok(items.as_slice()),
        Some(_) => Err(format!("{path}: content is not an array")),
        None if required => Err(format!("{path}: content is required")),
        None => Ok(&[]),
    }
}

fn non_empty<'a>(node: &'a Value, path: &str) -> Result<&'a [Value], String> {
    let c = content_of(node, path, true)?;
    if c.is_empty() {
        return Err(format!("{path}: content needs at least one item"));
    }
    Ok(c)
}

fn check_node(
    node: &Value,
    path: &str,
    ids: &mut HashSet<String>,
    depth: usize,
) -> Result<(), String> {
    if depth > 200 {
        return Err(format!("{path}: absurd depth"));
    }
    let obj = node
        .as_object()
        .ok_or(format!("{path}: node is not an object"))?;
    let k = kind(node);
    let allowed_keys: &[&str] = match k {
        "text" => &["type", "text", "marks"],
        "hardBreak" | "rule" => &["type", "attrs"],
        "paragraph" | "heading" | "codeBlock" | "table" => &["type", "attrs", "content", "marks"],
        _ => &["type", "attrs", "content"],
    };
    for key in obj.keys() {
        if !allowed_keys.contains(&key.as_str()) {
            return Err(format!("{path}: unexpected key {key:?}"));
        }
    }
    if let Some(marks) = node.get("marks") {
        let marks = marks
            .as_array()
            .ok_or(format!("{path}: marks not an array"))?;
        if k != "text" && !marks.is_empty() {
            return Err(format!(
                "{path}: block marks not expected from the converter"
            ));
        }
    }
    match k {
        "paragraph" => {
            let c = content_of(node, path, false)?;
            check_inline(c, path)?;
        }
        "heading" => {
            let level = node
                .get("attrs")
                .and_then(|a| a.get("level"))
                .and_then(Value::as_u64)
                .ok_or(format!("{path}: heading needs attrs.level"))?;
            if !(1..=6).contains(&level) {
                return Err(format!("{path}: heading level {level}"));
            }
            check_inline(content_of(node, path, false)?, path)?;
        }
        "bulletList" | "orderedList" => {
            if k == "orderedList" {
                if let Some(order) = node.get("attrs").and_then(|a| a.get("order")) {
                    if order.as_u64().is_none() {
                        return Err(format!("{path}: order must be a number >= 0"));
                    }
                }
            }
            check_children(non_empty(node, path)?, &["listItem"], path, ids, depth)?;
        }
        "listItem" => {
            let c = non_empty(node, path)?;
            if kind(&c[0]) != "paragraph" {
                return Err(format!("{path}: listItem must start with a paragraph"));
            }
            check_children(c, LIST_ITEM_BLOCKS, path, ids, depth)?;
        }
        "taskList" => {
            local_id(node, path, ids)?;
            check_children(
                non_empty(node, path)?,
                &["taskItem", "taskList"],
                path,
                ids,
                depth,
            )?;
        }
        "taskItem" => {
            local_id(node, path, ids)?;
            let state = node
                .get("attrs")
                .and_then(|a| a.get("state"))
                .and_then(Value::as_str);
            if !matches!(state, Some("TODO" | "DONE")) {
                return Err(format!("{path}: task state {state:?}"));
            }
            check_inline(content_of(node, path, false)?, path)?;
        }
        "codeBlock" => {
            if let Some(attrs) = node.get("attrs") {
                if let Some(lang) = attrs.get("language") {
                    if !lang.is_string() {
                        return Err(format!("{path}: language must be a string"));
                    }
                }
            }
            for (i, t) in content_of(node, path, false)?.iter().enumerate() {
                if kind(t) != "text" {
                    return Err(format!("{path}/{i}: codeBlock holds text only"));
                }
                if t.get("marks")
                    .and_then(Value::as_array)
                    .is_some_and(|m| !m.is_empty())
                {
                    return Err(format!("{path}/{i}: code text cannot have marks"));
                }
                check_text(t, &format!("{path}/{i}"))?;
            }
        }
        "blockquote" => check_children(non_empty(node, path)?, QUOTE_BLOCKS, path, ids, depth)?,
        "rule" | "hardBreak" => {}
        "table" => check_children(non_empty(node, path)?, &["tableRow"], path, ids, depth)?,
        "tableRow" => check_children(
            content_of(node, path, true)?,
            &["tableHeader", "tableCell"],
            path,
            ids,
            depth,
        )?,
        "tableHeader" | "tableCell" => {
            check_children(non_empty(node, path)?, CELL_BLOCKS, path, ids, depth)?
        }
        "panel" => check_children(non_empty(node, path)?, PANEL_BLOCKS, path, ids, depth)?,
        "expand" => check_children(non_empty(node, path)?, DOC_BLOCKS, path, ids, depth)?,
        "text" => check_text(node, path)?,
        other => {
            return Err(format!(
                "{path}: converter produced unexpected node {other:?}"
            ))
        }
    }
    Ok(())
}

fn local_id(node: &Value, path: &str, ids: &mut HashSet<String>) -> Result<(), String> {
    let id = node
        .get("attrs")
        .and_then(|a| a.get("localId"))
        .and_then(Value::as_str)
        .ok_or(format!("{path}: localId required"))?;
    if id.is_empty() || !ids.insert(id.to_string()) {
        return Err(format!("{path}: localId {id:?} empty or not unique"));
    }
    Ok(())
}

fn check_inline(nodes: &[Value], path: &str) -> Result<(), String> {
    for (i, n) in nodes.iter().enumerate() {
        let k = kind(n);
        let p = format!("{path}/{i}:{k}");
        if !INLINE.contains(&k) {
            return Err(format!("{p}: not an inline node"));
        }
        match k {
            "text" => check_text(n, &p)?,
            "hardBreak"
                if n.as_object()
                    .is_some_and(|o| o.keys().any(|k| k != "type" && k != "attrs")) =>
            {
                return Err(format!("{p}: unexpected keys"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_text(node: &Value, path: &str) -> Result<(), String> {
    let text = node
        .get("text")
        .and_then(Value::as_str)
        .ok_or(format!("{path}: text required"))?;
    if text.is_empty() {
        return Err(format!("{path}: empty text"));
    }
    let marks = node
        .get("marks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut seen = HashSet::new();
    let names: Vec<&str> = marks.iter().map(kind).collect();
    for (m, name) in marks.iter().zip(&names) {
        if !TEXT_MARKS.contains(name) {
            return Err(format!("{path}: mark {name:?} not allowed on text"));
        }
        if !seen.insert(*name) {
            return Err(format!("{path}: duplicate mark {name:?}"));
        }
        if *name == "link" {
            let href = m.get("attrs").and_then(|a| a.get("href"));
            if !href.is_some_and(Value::is_string) {
                return Err(format!("{path}: link needs attrs.href"));
            }
        }
    }
    if names.contains(&"code") && names.iter().any(|n| !matches!(*n, "code" | "link")) {
        return Err(format!("{path}: code mark combined with {names:?}"));
    }
    Ok(())
}
