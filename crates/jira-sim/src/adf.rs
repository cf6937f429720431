//! Atlassian Document Format: structural validation (after `@atlaskit/adf-schema`'s
//! `full.json`), plain-text extraction and plain-text → ADF.

use serde_json::{json, Map, Value};

const BLOCK: &[&str] = &[
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "codeBlock",
    "blockquote",
    "rule",
    "panel",
    "table",
    "mediaSingle",
    "mediaGroup",
    "expand",
    "taskList",
    "decisionList",
    "blockCard",
    "embedCard",
    "layoutSection",
    "extension",
    "bodiedExtension",
    "multiBodiedExtension",
];
const INLINE: &[&str] = &[
    "text",
    "hardBreak",
    "mention",
    "emoji",
    "inlineCard",
    "status",
    "date",
    "placeholder",
    "inlineExtension",
    "mediaInline",
];
const MARKS: &[&str] = &[
    "strong",
    "em",
    "strike",
    "underline",
    "code",
    "link",
    "subsup",
    "textColor",
    "backgroundColor",
    "annotation",
    "alignment",
    "indentation",
    "breakout",
    "border",
    "dataConsumer",
    "fragment",
];

fn is_hex_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|x| x.is_ascii_hexdigit())
}

/// Checks that `v` is a valid ADF document. `Err` names the first problem found.
pub fn validate(v: &Value) -> Result<(), String> {
    let o = v.as_object().ok_or("document is not an object")?;
    for k in o.keys() {
        if !matches!(k.as_str(), "version" | "type" | "content") {
            return Err(format!("unexpected property '{k}' on doc"));
        }
    }
    if o.get("version") != Some(&json!(1)) {
        return Err("version must be 1".into());
    }
    if o.get("type").and_then(Value::as_str) != Some("doc") {
        return Err("type must be 'doc'".into());
    }
    let content = o
        .get("content")
        .and_then(Value::as_array)
        .ok_or("doc.content must be an array")?;
    for n in content {
        node(n, "doc")?;
    }
    Ok(())
}

fn attrs(o: &Map<String, Value>) -> Option<&Map<String, Value>> {
    o.get("attrs").and_then(Value::as_object)
}

fn children<'a>(o: &'a Map<String, Value>, ty: &str, min: usize) -> Result<&'a [Value], String> {
    match o.get("content") {
        None if min == 0 => Ok(&[]),
        None => Err(format!("{ty}.content is required")),
        Some(Value::Array(a)) if a.len() >= min => Ok(a),
        Some(Value::Array(_)) => Err(format!("{ty}.content needs at least {min} item(s)")),
        Some(_) => Err(format!("{ty}.content must be an array")),
    }
}

fn each(o: &Map<String, Value>, ty: &str, min: usize, allowed: &[&str]) -> Result<(), String> {
    for c in children(o, ty, min)? {
        let cty = c.get("type").and_then(Value::as_str).unwrap_or("");
        if !allowed.contains(&cty) {
            return Err(format!("'{cty}' is not allowed inside '{ty}'"));
        }
        node(c, ty)?;
    }
    Ok(())
}

fn marks(o: &Map<String, Value>, ty: &str) -> Result<(), String> {
    let Some(m) = o.get("marks") else {
        return Ok(());
    };
    let arr = m.as_array().ok_or(format!("{ty}.marks must be an array"))?;
    let mut names = vec![];
    for mk in arr {
        let mo = mk.as_object().ok_or("mark must be an object")?;
        let name = mo
            .get("type")
            .and_then(Value::as_str)
            .ok_or("mark.type is required")?;
        if !MARKS.contains(&name) {
            return Err(format!("unknown mark '{name}'"));
        }
        let allowed: &[&str] = match ty {
            "text" => &[
                "strong",
                "em",
                "strike",
                "underline",
                "code",
                "link",
                "subsup",
                "textColor",
                "backgroundColor",
                "annotation",
            ],
            "paragraph" | "heading" => &["alignment", "indentation", "dataConsumer", "fragment"],
            "codeBlock" | "expand" | "layoutSection" => &["breakout", "dataConsumer", "fragment"],
            "media" => &["link", "border", "annotation"],
            "mediaInline" => &["link", "border", "annotation"],
            _ => &["dataConsumer", "fragment"],
        };
        if !allowed.contains(&name) {
            return Err(format!("mark '{name}' is not allowed on '{ty}'"));
        }
        for k in mo.keys() {
            if !matches!(k.as_str(), "type" | "attrs") {
                return Err(format!("unexpected property '{k}' on mark"));
            }
        }
        let a = attrs(mo);
        match name {
            "link"
                if a.and_then(|a| a.get("href"))
                    .and_then(Value::as_str)
                    .is_none() =>
            {
                return Err("link mark needs attrs.href".into())
            }
            "subsup"
                if !matches!(
                    a.and_then(|a| a.get("type")).and_then(Value::as_str),
                    Some("sub" | "sup")
                ) =>
            {
                return Err("subsup mark needs attrs.type sub|sup".into())
            }
            "textColor" | "backgroundColor"
                if !a
                    .and_then(|a| a.get("color"))
                    .and_then(Value::as_str)
                    .is_some_and(is_hex_color) =>
            {
                return Err(format!("{name} mark needs attrs.color as #rrggbb"))
            }
            _ => {}
        }
        names.push(name);
    }
    if ty == "text" && names.contains(&"code") {
        if let Some(bad) = names
            .iter()
            .find(|n| !matches!(**n, "code" | "link" | "annotation"))
        {
            return Err(format!("code mark cannot be combined with '{bad}'"));
        }
    }
    Ok(())
}

const LIST_ITEM_CONTENT: &[&str] = &[
    "paragraph",
    "bulletList",
    "orderedList",
    "taskList",
    "codeBlock",
    "mediaSingle",
    "extension",
];
const CELL_CONTENT: &[&str] = &[
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "taskList",
    "codeBlock",
    "blockquote",
    "panel",
    "rule",
    "mediaSingle",
    "mediaGroup",
    "decisionList",
    "nestedExpand",
    "blockCard",
    "embedCard",
    "extension",
];
const PANEL_CONTENT: &[&str] = &[
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "blockCard",
    "mediaGroup",
    "mediaSingle",
    "codeBlock",
    "taskList",
    "rule",
    "decisionList",
    "extension",
];

fn node(n: &Value, parent: &str) -> Result<(), String> {
    let o = n.as_object().ok_or("node must be an object")?;
    let ty = o
        .get("type")
        .and_then(Value::as_str)
        .ok_or("node.type is required")?;
    for k in o.keys() {
        if !matches!(k.as_str(), "type" | "content" | "attrs" | "marks" | "text") {
            return Err(format!("unexpected property '{k}' on '{ty}'"));
        }
    }
    if parent == "doc" && !BLOCK.contains(&ty) {
        return Err(format!("'{ty}' is not allowed at the top level"));
    }
    if ty != "text" && o.contains_key("text") {
        return Err(format!("'{ty}' cannot have text"));
    }
    marks(o, ty)?;
    let a = attrs(o);
    let sattr = |k: &str| a.and_then(|a| a.get(k)).and_then(Value::as_str);
    match ty {
        "text" => {
            let t = o
                .get("text")
                .and_then(Value::as_str)
                .ok_or("text node needs 'text'")?;
            if t.is_empty() {
                return Err("text must not be empty".into());
            }
            if o.contains_key("content") {
                return Err("text node cannot have content".into());
            }
            Ok(())
        }
        "paragraph" => each(o, ty, 0, INLINE),
        "heading" => {
            let lvl = a.and_then(|a| a.get("level")).and_then(Value::as_i64);
            if !matches!(lvl, Some(1..=6)) {
                return Err("heading needs attrs.level 1-6".into());
            }
            each(o, ty, 0, INLINE)
        }
        "bulletList" => each(o, ty, 1, &["listItem"]),
        "orderedList" => {
            if let Some(order) = a.and_then(|a| a.get("order")) {
                if order.as_i64().is_none_or(|n| n < 0) {
                    return Err("orderedList attrs.order must be a whole number >= 0".into());
                }
            }
            each(o, ty, 1, &["listItem"])
        }
        "listItem" => each(o, ty, 1, LIST_ITEM_CONTENT),
        "taskList" => each(o, ty, 1, &["taskItem", "taskList"]),
        "taskItem" => {
            if sattr("localId").is_none() || sattr("state").is_none() {
                return Err("taskItem needs attrs.localId and attrs.state".into());
            }
            if !matches!(sattr("state"), Some("TODO" | "DONE")) {
                return Err("taskItem attrs.state must be TODO or DONE".into());
            }
            each(o, ty, 0, INLINE)
        }
        "decisionList" => each(o, ty, 1, &["decisionItem"]),
        "decisionItem" => each(o, ty, 0, INLINE),
        "codeBlock" => {
            for c in children(o, ty, 0)? {
                if c.get("type").and_then(Value::as_str) != Some("text") {
                    return Err("codeBlock may only contain text".into());
                }
                if c.get("marks")
                    .is_some_and(|m| m.as_array().is_some_and(|a| !a.is_empty()))
                {
                    return Err("text in codeBlock cannot have marks".into());
                }
                node(c, ty)?;
            }
            Ok(())
        }
        "blockquote" => each(
            o,
            ty,
            1,
            &[
                "paragraph",
                "bulletList",
                "orderedList",
                "codeBlock",
                "mediaGroup",
                "mediaSingle",
            ],
        ),
        "rule" => {
            if o.contains_key("content") {
                return Err("rule cannot have content".into());
            }
            Ok(())
        }
        "panel" => {
            if !matches!(
                sattr("panelType"),
                Some("info" | "note" | "tip" | "warning" | "error" | "success" | "custom")
            ) {
                return Err("panel needs a valid attrs.panelType".into());
            }
            each(o, ty, 1, PANEL_CONTENT)
        }
        "table" => each(o, ty, 1, &["tableRow"]),
        "tableRow" => each(o, ty, 1, &["tableCell", "tableHeader"]),
        "tableCell" | "tableHeader" => each(o, ty, 1, CELL_CONTENT),
        "expand" | "nestedExpand" => each(o, ty, 1, CELL_CONTENT),
        "mediaSingle" => each(o, ty, 1, &["media", "caption"]),
        "mediaGroup" => each(o, ty, 1, &["media"]),
        "media" | "mediaInline" => {
            if sattr("id").is_none() && sattr("url").is_none() {
                return Err("media needs attrs.id or attrs.url".into());
            }
            Ok(())
        }
        "caption" => each(o, ty, 0, INLINE),
        "hardBreak" => Ok(()),
        "mention" => sattr("id")
            .map(|_| ())
            .ok_or("mention needs attrs.id".into()),
        "emoji" => sattr("shortName")
            .map(|_| ())
            .ok_or("emoji needs attrs.shortName".into()),
        "inlineCard" | "blockCard" | "embedCard" => {
            if sattr("url").is_none() && a.and_then(|a| a.get("data")).is_none() {
                return Err(format!("{ty} needs attrs.url or attrs.data"));
            }
            Ok(())
        }
        "status" => {
            let color_ok = sattr("color").is_some_and(|c| {
                matches!(
                    c,
                    "neutral" | "purple" | "blue" | "red" | "yellow" | "green"
                ) || is_hex_color(c)
            });
            if sattr("text").is_none_or(str::is_empty) || !color_ok {
                return Err("status needs attrs.text and attrs.color".into());
            }
            Ok(())
        }
        "date" => sattr("timestamp")
            .map(|_| ())
            .ok_or("date needs attrs.timestamp".into()),
        "placeholder" => sattr("text")
            .map(|_| ())
            .ok_or("placeholder needs attrs.text".into()),
        "layoutSection" => each(o, ty, 1, &["layoutColumn"]),
        "layoutColumn" => each(o, ty, 1, CELL_CONTENT),
        "extension" | "inlineExtension" | "bodiedExtension" | "multiBodiedExtension" => {
            if sattr("extensionKey").is_none() || sattr("extensionType").is_none() {
                return Err(format!(
                    "{ty} needs attrs.extensionKey and attrs.extensionType"
                ));
            }
            Ok(())
        }
        other => Err(format!("unknown node type '{other}'")),
    }
}

/// Plain text of an ADF document (paragraphs separated by newlines).
pub fn to_plain(v: &Value) -> String {
    let mut out = String::new();
    walk(v, &mut out);
    out.trim_end().to_string()
}

fn walk(v: &Value, out: &mut String) {
    let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
    match ty {
        "text" => out.push_str(v.get("text").and_then(Value::as_str).unwrap_or("")),
        "hardBreak" => out.push('\n'),
        "mention" | "emoji" | "status" => {
            let a = v.get("attrs");
            let t = a
                .and_then(|a| a.get("text").or_else(|| a.get("shortName")))
                .and_then(Value::as_str)
                .unwrap_or("");
            out.push_str(t);
        }
        "inlineCard" => out.push_str(
            v.get("attrs")
                .and_then(|a| a.get("url"))
                .and_then(Value::as_str)
                .unwrap_or(""),
        ),
        _ => {}
    }
    if let Some(c) = v.get("content").and_then(Value::as_array) {
        for n in c {
            walk(n, out);
        }
    }
    if matches!(
        ty,
        "paragraph" | "heading" | "codeBlock" | "listItem" | "rule" | "tableRow" | "taskItem"
    ) && !out.ends_with('\n')
    {
        out.push('\n');
    }
}

/// Wraps plain text as ADF paragraphs (one per line).
pub fn from_plain(s: &str) -> Value {
    let content: Vec<Value> = s
        .lines()
        .map(|l| {
            if l.is_empty() {
                json!({"type": "paragraph", "content": []})
            } else {
                json!({"type": "paragraph", "content": [{"type": "text", "text": l}]})
            }
        })
        .collect();
    json!({"version": 1, "type": "doc", "content": content})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn accepts_common_documents() {
        let d = json!({"version":1,"type":"doc","content":[
            {"type":"heading","attrs":{"level":2},"content":[{"type":"text","text":"Title"}]},
            {"type":"paragraph","content":[{"type":"text","text":"bold","marks":[{"type":"strong"}]},{"type":"hardBreak"}]},
            {"type":"bulletList","content":[{"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"a"}]}]}]},
            {"type":"codeBlock","attrs":{"language":"rust"},"content":[{"type":"text","text":"fn main(){}"}]},
            {"type":"table","content":[{"type":"tableRow","content":[{"type":"tableHeader","content":[{"type":"paragraph"}]}]}]}
        ]});
        assert_eq!(validate(&d), Ok(()));
        assert_eq!(to_plain(&d).lines().next(), Some("Title"));
    }

    #[test]
    fn rejects_bad_documents() {
        let bad = [
            json!("plain string"),
            json!({"version":2,"type":"doc","content":[]}),
            json!({"version":1,"type":"doc","content":[{"type":"text","text":"x"}]}),
            json!({"version":1,"type":"doc","content":[{"type":"paragraph","content":[{"type":"text","text":""}]}]}),
            json!({"version":1,"type":"doc","content":[{"type":"heading","content":[]}]}),
            json!({"version":1,"type":"doc","content":[{"type":"bulletList","content":[]}]}),
            json!({"version":1,"type":"doc","content":[{"type":"paragraph","content":[{"type":"text","text":"x","marks":[{"type":"code"},{"type":"strong"}]}]}]}),
            json!({"version":1,"type":"doc","content":[{"type":"blink"}]}),
            json!({"version":1,"type":"doc","content":[],"extra":1}),
            json!({"version":1,"type":"doc","content":[{"type":"paragraph","marks":[{"type":"strong"}],"content":[{"type":"text","text":"x"}]}]}),
            json!({"version":1,"type":"doc","content":[{"type":"paragraph","content":[{"type":"status","attrs":{"text":"ok","color":"orange"}}]}]}),
            json!({"version":1,"type":"doc","content":[{"type":"paragraph","content":[{"type":"text","text":"x","marks":[{"type":"alignment","attrs":{"align":"center"}}]}]}]}),
        ];
        for b in bad {
            assert!(validate(&b).is_err(), "accepted {b}");
        }
    }
}
