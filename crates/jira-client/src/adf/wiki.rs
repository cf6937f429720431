//! Jira wiki markup (Data Center REST v2 text fields) to and from ADF.

use super::from_markdown::{normalize_inline, push_text_node};
use super::model::{
    CodeBlockAttrs, Document, LinkAttrs, Mark, Node, OrderedListAttrs, PanelAttrs, TaskState,
};
use super::to_markdown::{atom_text, card_url};

const MAX_DEPTH: usize = 64;

// ---------------------------------------------------------------------------
// ADF -> wiki
// ---------------------------------------------------------------------------

/// Renders ADF as Jira wiki markup.
pub fn adf_to_wiki<D: super::AdfInput + ?Sized>(doc: &D) -> String {
    let doc = doc.to_document();
    let mut out = wiki_blocks(&doc.content, 0);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn wiki_blocks(nodes: &[Node], depth: usize) -> String {
    let mut parts = Vec::new();
    let mut inline: Vec<Node> = Vec::new();
    for n in nodes {
        if n.is_inline() {
            inline.push(n.clone());
            continue;
        }
        if !inline.is_empty() {
            parts.push(wiki_inline(&inline, true));
            inline.clear();
        }
        let text = wiki_block(n, depth);
        if !text.is_empty() {
            parts.push(text);
        }
    }
    if !inline.is_empty() {
        parts.push(wiki_inline(&inline, true));
    }
    parts.join("\n\n")
}

fn wiki_list(prefix: &str, items: &[Node], depth: usize) -> String {
    if depth > MAX_DEPTH {
        return items
            .iter()
            .map(|i| escape_wiki(&atom_text(i), false))
            .collect::<Vec<_>>()
            .join(" ");
    }
    let mut lines = Vec::new();
    for item in items {
        let mut text_parts: Vec<String> = Vec::new();
        let mut nested: Vec<String> = Vec::new();
        let check = match item {
            Node::TaskItem { attrs, .. } => Some(attrs.state),
            _ => None,
        };
        let children = item.children();
        if let Node::TaskItem { content, .. } = item {
            text_parts.push(wiki_inline(content, false));
        } else if let Node::TaskList { content, .. } = item {
            nested.push(wiki_list(&format!("{prefix}*"), content, depth + 1));
        } else {
            for child in children {
                match child {
                    Node::BulletList { content } => {
                        nested.push(wiki_list(&format!("{prefix}*"), content, depth + 1))
                    }
                    Node::TaskList { content, .. } => {
                        nested.push(wiki_list(&format!("{prefix}*"), content, depth + 1))
                    }
                    Node::OrderedList { content, .. } => {
                        nested.push(wiki_list(&format!("{prefix}#"), content, depth + 1))
                    }
                    Node::Paragraph { content, .. } => {
                        text_parts.push(wiki_inline(content, false));
                    }
                    other => {
                        let t = escape_wiki(&atom_text(other), false);
                        text_parts.push(t.replace('\n', " \\\\ "));
                    }
                }
            }
        }
        if !text_parts.is_empty() || nested.is_empty() {
            let mut line = format!("{prefix} ");
            if let Some(state) = check {
                line.push_str(if state == TaskState::Done {
                    "☑ "
                } else {
                    "☐ "
                });
            }
            let body = text_parts
                .into_iter()
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" \\\\ ");
            line.push_str(&body.replace('\n', " "));
            lines.push(line.trim_end().to_string());
        }
        lines.extend(nested);
    }
    lines.join("\n")
}

fn wiki_block(node: &Node, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return escape_wiki(&atom_text(node), true);
    }
    match node {
        Node::Paragraph { content, .. } => wiki_inline(content, true),
        Node::Heading { attrs, content, .. } => {
            let text = wiki_inline(content, false).replace('\n', " ");
            if text.is_empty() {
                String::new()
            } else {
                format!("h{}. {}", attrs.level.clamp(1, 6), text)
            }
        }
        Node::BulletList { content } => wiki_list("*", content, depth),
        Node::TaskList { content, .. } => wiki_list("*", content, depth),
        Node::DecisionList { content, .. } => wiki_list("*", content, depth),
        Node::OrderedList { content, .. } => wiki_list("#", content, depth),
        Node::CodeBlock { attrs, content } => {
            let code: String = content.iter().map(atom_text).collect();
            match attrs.as_ref().and_then(|a| a.language.clone()) {
                Some(lang) if !lang.is_empty() => {
                    let lang: String = lang
                        .chars()
                        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '+' | '#' | '_'))
                        .collect();
                    format!("{{code:{lang}}}\n{code}\n{{code}}")
                }
                _ => format!("{{noformat}}\n{code}\n{{noformat}}"),
            }
        }
        Node::Blockquote { content } => {
            if let [Node::Paragraph {
                content: inline, ..
            }] = content.as_slice()
            {
                if !inline.iter().any(|n| matches!(n, Node::HardBreak)) {
                    return format!("bq. {}", wiki_inline(inline, false));
                }
            }
            format!("{{quote}}\n{}\n{{quote}}", wiki_blocks(content, depth + 1))
        }
        Node::Panel { content, .. } => {
            format!("{{panel}}\n{}\n{{panel}}", wiki_blocks(content, depth + 1))
        }
        Node::Expand { attrs, content } | Node::NestedExpand { attrs, content } => {
            let mut parts = Vec::new();
            if let Some(t) = attrs.as_ref().and_then(|a| a.title.clone()) {
                if !t.trim().is_empty() {
                    parts.push(format!("*{}*", escape_wiki(t.trim(), false)));
                }
            }
            let inner = wiki_blocks(content, depth + 1);
            if !inner.is_empty() {
                parts.push(inner);
            }
            parts.join("\n\n")
        }
        Node::Rule => "----".to_string(),
        Node::Table { content, .. } => content
            .iter()
            .map(|row| {
                let mut line = String::new();
                let cells = row.children();
                for cell in cells {
                    let header = matches!(cell, Node::TableHeader { .. });
                    let text = cell
                        .children()
                        .iter()
                        .map(|b| match b {
                            Node::Paragraph { content, .. } | Node::Heading { content, .. } => {
                                wiki_inline(content, false)
                            }
                            other => escape_wiki(&atom_text(other), false),
                        })
                        .filter(|t| !t.is_empty())
                        .collect::<Vec<_>>()
                        .join(" \\\\ ")
                        .replace('\n', " ");
                    let text = if text.is_empty() {
                        " ".to_string()
                    } else {
                        text
                    };
                    line.push_str(if header { "||" } else { "|" });
                    line.push_str(&text);
                }
                if let Some(last) = cells.last() {
                    line.push_str(if matches!(last, Node::TableHeader { .. }) {
                        "||"
                    } else {
                        "|"
                    });
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Node::BlockCard { attrs } | Node::EmbedCard { attrs } => match card_url(attrs) {
            Some(url) => format!("[{}]", wiki_url(&url)),
            None => String::new(),
        },
        Node::MediaSingle { content, .. } | Node::MediaGroup { content } => content
            .iter()
            .map(|n| escape_wiki(&atom_text(n), true))
            .collect::<Vec<_>>()
            .join("\n"),
        Node::Unknown(_) | Node::Media { .. } => escape_wiki(&atom_text(node), true),
        other if !other.children().is_empty() => wiki_blocks(other.children(), depth + 1),
        other => wiki_inline(std::slice::from_ref(other), true),
    }
}

fn wiki_url(url: &str) -> String {
    url.replace('|', "%7C")
        .replace(']', "%5D")
        .replace('[', "%5B")
        .replace(' ', "%20")
}

fn effect(m: &Mark) -> Option<&'static str> {
    match m {
        Mark::Strong => Some("*"),
        Mark::Em => Some("_"),
        Mark::Strike => Some("-"),
        Mark::Underline => Some("+"),
        _ => None,
    }
}

fn wiki_inline(nodes: &[Node], line_start: bool) -> String {
    let mut out = String::new();
    let mut at_start = line_start;
    for (idx, node) in nodes.iter().enumerate() {
        match node {
            Node::Text { text, marks } => {
                let code = marks.iter().any(|m| matches!(m, Mark::Code));
                let link = marks.iter().find_map(|m| match m {
                    Mark::Link { attrs } => Some(attrs.href.clone()),
                    _ => None,
                });
                let (lead, core, trail) = {
                    let ts = text.trim_start();
                    let lead = &text[..text.len() - ts.len()];
                    let core = ts.trim_end();
                    (lead, core, &ts[core.len()..])
                };
                out.push_str(&escape_wiki(lead, at_start));
                if core.is_empty() {
                    at_start = false;
                    continue;
                }
                let mut body = if code {
                    format!("{{{{{}}}}}", escape_wiki(core, false))
                } else {
                    escape_wiki(core, at_start && lead.is_empty())
                };
                if !code {
                    let prev_alnum = out.chars().last().is_some_and(char::is_alphanumeric);
                    let next_alnum = trail.is_empty()
                        && nodes
                            .get(idx + 1)
                            .map(atom_text)
                            .and_then(|t| t.chars().next())
                            .is_some_and(char::is_alphanumeric);
                    for m in marks.iter().rev() {
                        if let Some(d) = effect(m) {
                            if prev_alnum || next_alnum {
                                body = format!("{{{d}}}{body}{{{d}}}");
                            } else {
                                body = format!("{d}{body}{d}");
                            }
                        }
                    }
                }
                if let Some(href) = link {
                    body = format!("[{body}|{}]", wiki_url(&href));
                }
                out.push_str(&body);
                out.push_str(&escape_wiki(trail, false));
                at_start = false;
            }
            Node::HardBreak => {
                if idx > 0 && idx + 1 < nodes.len() {
                    out.push('\n');
                    at_start = true;
                }
            }
            Node::InlineCard { attrs } => {
                if let Some(url) = card_url(attrs) {
                    out.push_str(&format!("[{}]", wiki_url(&url)));
                }
                at_start = false;
            }
            other => {
                out.push_str(&escape_wiki(&atom_text(other), at_start));
                at_start = false;
            }
        }
    }
    out
}

fn escape_wiki(text: &str, line_start: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut at_start = line_start;
    for (i, &c) in chars.iter().enumerate() {
        if c == '\n' {
            out.push('\n');
            at_start = true;
            continue;
        }
        if at_start {
            if c == ' ' || c == '\t' {
                out.push(c);
                continue;
            }
            at_start = false;
            if matches!(c, '#' | '*' | '-') {
                out.push('\\');
                out.push(c);
                continue;
            }
            let rest: String = chars[i..].iter().take(4).collect();
            let lower = rest.to_ascii_lowercase();
            if (lower.len() >= 3
                && lower.starts_with('h')
                && lower
                    .as_bytes()
                    .get(1)
                    .is_some_and(|b| (b'1'..=b'6').contains(b))
                && lower.as_bytes().get(2) == Some(&b'.'))
                || lower.starts_with("bq.")
            {
                out.push(c);
                continue;
            }
        }
        match c {
            '\\' => out.push_str("&#92;"),
            '{' | '}' | '[' | ']' | '|' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '.' if i >= 2
                && ((chars[i - 2] == 'h' || chars[i - 2] == 'H')
                    && ('1'..='6').contains(&chars[i - 1])
                    || (chars[i - 2] == 'b' || chars[i - 2] == 'B')
                        && (chars[i - 1] == 'q' || chars[i - 1] == 'Q'))
                && (i == 2 || chars[i - 3] == '\n') =>
            {
                out.push_str("&#46;");
            }
            '*' | '_' | '-' | '+' | '^' | '~' | '?' => {
                let prev_alnum = i > 0 && chars[i - 1].is_alphanumeric();
                let next_alnum = i + 1 < chars.len() && chars[i + 1].is_alphanumeric();
                if !(prev_alnum && next_alnum) {
                    out.push('\\');
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// wiki -> ADF
// ---------------------------------------------------------------------------

/// Reads Jira wiki markup into an ADF document. Unknown macros are kept as text.
pub fn wiki_to_adf(wiki: &str) -> Document {
    let text = wiki.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    Document::new(parse_wiki_blocks(&lines, 0))
}

fn macro_start<'a>(line: &'a str, name: &str) -> Option<(&'a str, &'a str)> {
    // Returns (params, rest-after-macro) for "{name}" or "{name:params}".
    let t = line.trim_start();
    let lower = t.to_ascii_lowercase();
    let open = format!("{{{name}");
    if !lower.starts_with(&open) {
        return None;
    }
    let after = &t[open.len()..];
    let close = after.find('}')?;
    let inner = &after[..close];
    if !(inner.is_empty() || inner.starts_with(':')) {
        return None;
    }
    Some((inner.trim_start_matches(':'), &after[close + 1..]))
}

fn find_macro_end(
    lines: &[&str],
    start: usize,
    first_rest: &str,
    name: &str,
) -> (Vec<String>, usize) {
    // Collects body lines until "{name}"; returns (body, index after the closing line).
    let end_tag = format!("{{{name}}}");
    let mut body = Vec::new();
    let first_lower = first_rest.to_ascii_lowercase();
    if let Some(pos) = first_lower.find(&end_tag) {
        body.push(first_rest[..pos].to_string());
        return (body, start + 1);
    }
    if !first_rest.trim().is_empty() {
        body.push(first_rest.to_string());
    }
    let mut i = start + 1;
    while i < lines.len() {
        let lower = lines[i].to_ascii_lowercase();
        if let Some(pos) = lower.find(&end_tag) {
            let before = &lines[i][..pos];
            if !before.is_empty() {
                body.push(before.to_string());
            }
            return (body, i + 1);
        }
        body.push(lines[i].to_string());
        i += 1;
    }
    (body, i)
}

fn list_prefix(line: &str) -> Option<(String, &str)> {
    let t = line.trim_start();
    let prefix: String = t
        .chars()
        .take_while(|c| matches!(c, '*' | '#' | '-'))
        .collect();
    if prefix.is_empty() {
        return None;
    }
    let rest = &t[prefix.len()..];
    if !rest.starts_with(' ') {
        return None;
    }
    if prefix.contains('-') && prefix != "-" {
        return None;
    }
    if prefix == "----" {
        return None;
    }
    let prefix = if prefix == "-" {
        "*".to_string()
    } else {
        prefix
    };
    Some((prefix, rest.trim_start()))
}

fn parse_wiki_blocks(lines: &[&str], depth: usize) -> Vec<Node> {
    let mut out = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let flush = |para: &mut Vec<&str>, out: &mut Vec<Node>| {
        if !para.is_empty() {
            let nodes = parse_wiki_inline(&para.join("\n"));
            if !nodes.is_empty() {
                out.push(Node::paragraph(nodes));
            }
            para.clear();
        }
    };
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        if trimmed.is_empty() {
            flush(&mut para, &mut out);
            i += 1;
            continue;
        }
        if let Some((params, rest)) = macro_start(line, "code") {
            flush(&mut para, &mut out);
            let (body, next) = find_macro_end(lines, i, rest, "code");
            let lang = params
                .split('|')
                .find(|p| !p.contains('=') && !p.is_empty())
                .map(str::to_string)
                .or_else(|| {
                    params
                        .split('|')
                        .find_map(|p| p.strip_prefix("language=").map(str::to_string))
                });
            out.push(code_block(lang, &body.join("\n")));
            i = next;
            continue;
        }
        if let Some((_, rest)) = macro_start(line, "noformat") {
            flush(&mut para, &mut out);
            let (body, next) = find_macro_end(lines, i, rest, "noformat");
            out.push(code_block(None, &body.join("\n")));
            i = next;
            continue;
        }
        for (name, panel) in [("quote", false), ("panel", true)] {
            if let Some((_, rest)) = macro_start(line, name) {
                flush(&mut para, &mut out);
                let (body, next) = find_macro_end(lines, i, rest, name);
                let body_refs: Vec<&str> = body.iter().map(String::as_str).collect();
                let inner = if depth < MAX_DEPTH {
                    parse_wiki_blocks(&body_refs, depth + 1)
                } else {
                    Vec::new()
                };
                if panel {
                    let content: Vec<Node> = inner
                        .into_iter()
                        .filter(|n| !matches!(n, Node::Blockquote { .. } | Node::Table { .. }))
                        .collect();
                    if !content.is_empty() {
                        out.push(Node::Panel {
                            attrs: PanelAttrs {
                                panel_type: "info".to_string(),
                            },
                            content,
                        });
                    }
                } else {
                    let content: Vec<Node> = inner
                        .into_iter()
                        .flat_map(|n| match n {
                            Node::Heading { content, .. } => vec![Node::paragraph(content)],
                            Node::Blockquote { content } => content,
                            Node::Rule | Node::Table { .. } | Node::Panel { .. } => Vec::new(),
                            other => vec![other],
                        })
                        .collect();
                    if !content.is_empty() {
                        out.push(Node::Blockquote { content });
                    }
                }
                i = next;
                break;
            }
        }
        if i >= lines.len() || lines[i] != line {
            continue;
        }
        let lower = trimmed.to_ascii_lowercase();
        if lower.len() >= 3
            && lower.starts_with('h')
            && (b'1'..=b'6').contains(&lower.as_bytes()[1])
            && lower.as_bytes()[2] == b'.'
        {
            flush(&mut para, &mut out);
            let level = lower.as_bytes()[1] - b'0';
            let nodes = parse_wiki_inline(trimmed[3..].trim());
            if !nodes.is_empty() {
                out.push(Node::heading(level, nodes));
            }
            i += 1;
            continue;
        }
        if lower.starts_with("bq.") {
            flush(&mut para, &mut out);
            let nodes = parse_wiki_inline(trimmed[3..].trim());
            if !nodes.is_empty() {
                out.push(Node::Blockquote {
                    content: vec![Node::paragraph(nodes)],
                });
            }
            i += 1;
            continue;
        }
        if trimmed.chars().count() >= 4 && trimmed.chars().all(|c| c == '-') {
            flush(&mut para, &mut out);
            out.push(Node::Rule);
            i += 1;
            continue;
        }
        if list_prefix(line).is_some() {
            flush(&mut para, &mut out);
            let mut items: Vec<(String, &str)> = Vec::new();
            while i < lines.len() {
                match list_prefix(lines[i]) {
                    Some((p, rest)) => items.push((p, rest)),
                    None => break,
                }
                i += 1;
            }
            out.extend(build_lists(&items, 0));
            continue;
        }
        if trimmed.starts_with('|') {
            flush(&mut para, &mut out);
            let mut rows = Vec::new();
            while i < lines.len() && lines[i].trim().starts_with('|') {
                rows.push(parse_table_row(lines[i].trim()));
                i += 1;
            }
            let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
            if cols > 0 {
                out.push(Node::Table {
                    attrs: serde_json::Value::Null,
                    content: rows
                        .into_iter()
                        .filter(|r| !r.is_empty())
                        .map(|r| Node::TableRow {
                            content: r
                                .into_iter()
                                .map(|(header, text)| {
                                    let nodes = parse_wiki_inline(text.trim());
                                    let content = vec![Node::paragraph(nodes)];
                                    if header {
                                        Node::TableHeader {
                                            attrs: serde_json::Value::Null,
                                            content,
                                        }
                                    } else {
                                        Node::TableCell {
                                            attrs: serde_json::Value::Null,
                                            content,
                                        }
                                    }
                                })
                                .collect(),
                        })
                        .collect(),
                });
            }
            continue;
        }
        para.push(line);
        i += 1;
    }
    flush(&mut para, &mut out);
    out
}

fn code_block(lang: Option<String>, code: &str) -> Node {
    let code = code.trim_matches('\n');
    Node::CodeBlock {
        attrs: lang
            .filter(|l| !l.is_empty())
            .map(|l| CodeBlockAttrs { language: Some(l) }),
        content: if code.is_empty() {
            Vec::new()
        } else {
            vec![Node::text(code)]
        },
    }
}

fn build_lists(items: &[(String, &str)], level: usize) -> Vec<Node> {
    // items all have prefix length > level.
    let mut out = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let kind = items[i].0.chars().nth(level).unwrap_or('*');
        let mut list_items = Vec::new();
        while i < items.len() && items[i].0.chars().nth(level) == Some(kind) {
            let (prefix, text) = &items[i];
            let mut content = Vec::new();
            if prefix.chars().count() == level + 1 {
                content.push(Node::paragraph(parse_wiki_inline(text)));
                i += 1;
            } else {
                content.push(Node::paragraph(Vec::new()));
            }
            let start = i;
            while i < items.len()
                && items[i].0.chars().count() > level + 1
                && items[i].0.chars().nth(level) == Some(kind)
            {
                i += 1;
            }
            if i > start && level < MAX_DEPTH {
                content.extend(build_lists(&items[start..i], level + 1));
            }
            list_items.push(Node::ListItem { content });
        }
        if list_items.is_empty() {
            i += 1;
            continue;
        }
        out.push(if kind == '#' {
            Node::OrderedList {
                attrs: None::<OrderedListAttrs>,
                content: list_items,
            }
        } else {
            Node::BulletList {
                content: list_items,
            }
        });
    }
    out
}

fn parse_table_row(line: &str) -> Vec<(bool, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut cells = Vec::new();
    let mut i = 0;
    let mut current: Option<(bool, String)> = None;
    let mut bracket = 0usize;
    let mut brace = 0usize;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            if let Some((_, s)) = current.as_mut() {
                s.push(c);
                s.push(chars[i + 1]);
            }
            i += 2;
            continue;
        }
        match c {
            '[' => bracket += 1,
            ']' => bracket = bracket.saturating_sub(1),
            '{' => brace += 1,
            '}' => brace = brace.saturating_sub(1),
            _ => {}
        }
        if c == '|' && bracket == 0 && brace == 0 {
            let header = chars.get(i + 1) == Some(&'|');
            if let Some(cell) = current.take() {
                cells.push(cell);
            }
            i += if header { 2 } else { 1 };
            current = Some((header, String::new()));
            continue;
        }
        if let Some((_, s)) = current.as_mut() {
            s.push(c);
        }
        i += 1;
    }
    if let Some((h, s)) = current {
        if !s.trim().is_empty() {
            cells.push((h, s));
        }
    }
    cells
}

/// Parses inline wiki markup into ADF inline nodes.
fn parse_wiki_inline(text: &str) -> Vec<Node> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    inline_into(&chars, &[], &mut out, 0);
    normalize_inline(out)
}

fn is_effect(c: char) -> Option<Mark> {
    match c {
        '*' => Some(Mark::Strong),
        '_' => Some(Mark::Em),
        '-' => Some(Mark::Strike),
        '+' => Some(Mark::Unknown(serde_json::json!({"type": "underline"}))),
        '^' | '~' => Some(Mark::Unknown(serde_json::Value::Null)),
        _ => None,
    }
}

fn mark_for(c: char) -> Option<Mark> {
    match c {
        '*' => Some(Mark::Strong),
        '_' => Some(Mark::Em),
        '-' => Some(Mark::Strike),
        '+' => Some(Mark::Underline),
        _ => None,
    }
}

fn find_closer(chars: &[char], from: usize, c: char) -> Option<usize> {
    let mut j = from + 1;
    while j < chars.len() {
        if chars[j] == '\n' {
            return None;
        }
        if chars[j] == c
            && !chars[j - 1].is_whitespace()
            && j > from + 1
            && (j + 1 == chars.len() || !chars[j + 1].is_alphanumeric())
        {
            return Some(j);
        }
        j += 1;
    }
    None
}

fn push_with(out: &mut Vec<Node>, text: &str, marks: &[Mark]) {
    push_text_node(out, text, marks.to_vec());
}

fn inline_into(chars: &[char], marks: &[Mark], out: &mut Vec<Node>, depth: usize) {
    let mut buf = String::new();
    let mut i = 0;
    // A search for a closing delimiter that failed from position i up to position p
    // fails from every later start before p too: remember it, so that long runs of
    // unmatched openers stay linear.
    let mut failed: std::collections::HashMap<(u8, char), usize> = std::collections::HashMap::new();
    let blocked = |failed: &std::collections::HashMap<(u8, char), usize>,
                   key: (u8, char),
                   i: usize| { failed.get(&key).is_some_and(|until| i < *until) };
    let flush_buf = |buf: &mut String, out: &mut Vec<Node>| {
        if !buf.is_empty() {
            push_plain_with_urls(out, buf, marks);
            buf.clear();
        }
    };
    while i < chars.len() {
        let c = chars[i];
        // Escapes and line breaks.
        if c == '\\' {
            if chars.get(i + 1) == Some(&'\\') {
                flush_buf(&mut buf, out);
                out.push(Node::HardBreak);
                i += 2;
                continue;
            }
            if let Some(&n) = chars.get(i + 1) {
                buf.push(n);
                i += 2;
                continue;
            }
        }
        if c == '\n' {
            flush_buf(&mut buf, out);
            out.push(Node::HardBreak);
            i += 1;
            continue;
        }
        if c == '&' {
            let rest: String = chars[i..chars.len().min(i + 8)].iter().collect();
            let entity = [
                ("&#92;", '\\'),
                ("&#46;", '.'),
                ("&amp;", '&'),
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&quot;", '"'),
            ]
            .into_iter()
            .find(|(e, _)| rest.starts_with(e));
            if let Some((e, ch)) = entity {
                buf.push(ch);
                i += e.chars().count();
                continue;
            }
        }
        // {{monospace}}
        if c == '{' && chars.get(i + 1) == Some(&'{') && !blocked(&failed, (b'C', '}'), i) {
            let found = find_seq(chars, i + 2, &['}', '}']);
            if found.is_none() {
                failed.insert((b'C', '}'), chars.len());
            }
            if let Some(end) = found {
                flush_buf(&mut buf, out);
                let code: String = unescape(&chars[i + 2..end]);
                if !code.is_empty() {
                    let mut m = vec![Mark::Code];
                    m.extend(
                        marks
                            .iter()
                            .filter(|x| matches!(x, Mark::Link { .. }))
                            .cloned(),
                    );
                    push_with(out, &code, &m);
                }
                i = end + 2;
                continue;
            }
        }
        // {color:...} / {color} and forced effects {*}
        if c == '{' && !blocked(&failed, (b'B', '}'), i) {
            let found = chars[i..].iter().position(|&x| x == '}').map(|p| p + i);
            if found.is_none() {
                failed.insert((b'B', '}'), chars.len());
            }
            if let Some(end) = found {
                let inner: String = chars[i + 1..end].iter().collect();
                let lower = inner.to_ascii_lowercase();
                if lower == "color" || lower.starts_with("color:") {
                    i = end + 1;
                    continue;
                }
                if inner.chars().count() == 1 {
                    if let Some(ch) = inner.chars().next().filter(|c| is_effect(*c).is_some()) {
                        // Forced effect: find matching {ch}.
                        let pat = ['{', ch, '}'];
                        let found = if blocked(&failed, (b'F', ch), i) {
                            None
                        } else {
                            find_seq(chars, end + 1, &pat)
                        };
                        if found.is_none() {
                            failed.insert((b'F', ch), chars.len());
                        }
                        if let Some(close) = found {
                            flush_buf(&mut buf, out);
                            let mut m = marks.to_vec();
                            if let Some(mk) = mark_for(ch) {
                                m.push(mk);
                            }
                            if depth < MAX_DEPTH {
                                inline_into(&chars[end + 1..close], &m, out, depth + 1);
                            }
                            i = close + 3;
                            continue;
                        }
                    }
                }
            }
        }
        // Links [text|url], [url], [~user]
        if c == '[' && !blocked(&failed, (b'L', ']'), i) {
            let found = chars[i + 1..]
                .iter()
                .position(|&x| x == ']' || x == '\n')
                .map(|p| p + i + 1);
            match found {
                Some(end) if chars[end] != ']' => {
                    failed.insert((b'L', ']'), end);
                }
                None => {
                    failed.insert((b'L', ']'), chars.len());
                }
                _ => {}
            }
            if let Some(end) = found {
                if chars[end] == ']' {
                    let inner: String = chars[i + 1..end].iter().collect();
                    flush_buf(&mut buf, out);
                    if let Some(user) = inner.strip_prefix('~') {
                        let user = user.trim_start_matches("accountid:");
                        push_with(out, &format!("@{user}"), marks);
                    } else {
                        let (label, target) = match inner.split_once('|') {
                            Some((l, t)) => (
                                Some(l.to_string()),
                                t.split('|').next().unwrap_or(t).to_string(),
                            ),
                            None => (None, inner.clone()),
                        };
                        let target = target.trim().to_string();
                        let label_chars: Vec<char> = label
                            .clone()
                            .unwrap_or_else(|| target.clone())
                            .chars()
                            .collect();
                        let mut m = marks.to_vec();
                        if !target.is_empty()
                            && !target.starts_with('^')
                            && !target.starts_with('#')
                        {
                            m.push(Mark::Link {
                                attrs: LinkAttrs {
                                    href: target.clone(),
                                    title: None,
                                },
                            });
                        }
                        if label.is_some() && depth < MAX_DEPTH {
                            inline_into(&label_chars, &m, out, depth + 1);
                        } else {
                            push_with(out, &label_chars.iter().collect::<String>(), &m);
                        }
                    }
                    i = end + 1;
                    continue;
                }
            }
        }
        // Images !url! / !url|params!
        if c == '!'
            && chars.get(i + 1).is_some_and(|n| !n.is_whitespace())
            && !blocked(&failed, (b'I', '!'), i)
        {
            let found = chars[i + 1..]
                .iter()
                .position(|&x| x == '!' || x == '\n')
                .map(|p| p + i + 1);
            match found {
                Some(end) if chars[end] != '!' => {
                    failed.insert((b'I', '!'), end);
                }
                None => {
                    failed.insert((b'I', '!'), chars.len());
                }
                _ => {}
            }
            if let Some(end) = found {
                if chars[end] == '!' {
                    let inner: String = chars[i + 1..end].iter().collect();
                    let url = inner.split('|').next().unwrap_or("").trim().to_string();
                    if !url.is_empty() && !url.contains(' ') {
                        flush_buf(&mut buf, out);
                        let mut m = marks.to_vec();
                        if url.contains("://") {
                            m.push(Mark::link(url.clone()));
                        }
                        push_with(out, &url, &m);
                        i = end + 1;
                        continue;
                    }
                }
            }
        }
        // ??citation??
        if c == '?' && chars.get(i + 1) == Some(&'?') && !blocked(&failed, (b'Q', '?'), i) {
            let found = find_seq(chars, i + 2, &['?', '?']);
            if found.is_none() {
                failed.insert((b'Q', '?'), chars.len());
            }
            if let Some(close) = found {
                if close > i + 2 {
                    flush_buf(&mut buf, out);
                    let mut m = marks.to_vec();
                    m.push(Mark::Em);
                    if depth < MAX_DEPTH {
                        inline_into(&chars[i + 2..close], &m, out, depth + 1);
                    }
                    i = close + 2;
                    continue;
                }
            }
        }
        // Effects *x* _x_ -x- +x+ ^x^ ~x~
        if is_effect(c).is_some() {
            let prev_ok = i == 0 || !chars[i - 1].is_alphanumeric();
            let next_ok = chars
                .get(i + 1)
                .is_some_and(|n| !n.is_whitespace() && *n != c);
            if prev_ok && next_ok && !blocked(&failed, (b'E', c), i) {
                let found = find_closer(chars, i, c);
                if found.is_none() {
                    let line_end = chars[i..]
                        .iter()
                        .position(|&x| x == '\n')
                        .map_or(chars.len(), |p| p + i);
                    failed.insert((b'E', c), line_end);
                }
                if let Some(close) = found {
                    flush_buf(&mut buf, out);
                    let mut m = marks.to_vec();
                    if let Some(mk) = mark_for(c) {
                        m.push(mk);
                    }
                    if depth < MAX_DEPTH {
                        inline_into(&chars[i + 1..close], &m, out, depth + 1);
                    }
                    i = close + 1;
                    continue;
                }
            }
        }
        buf.push(c);
        i += 1;
    }
    flush_buf(&mut buf, out);
}

fn find_seq(chars: &[char], from: usize, pat: &[char]) -> Option<usize> {
    if pat.is_empty() || from > chars.len() {
        return None;
    }
    (from..=chars.len().saturating_sub(pat.len())).find(|&j| chars[j..j + pat.len()] == *pat)
}

fn unescape(chars: &[char]) -> String {
    let mut s = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() && chars[i + 1] != '\\' {
            s.push(chars[i + 1]);
            i += 2;
            continue;
        }
        s.push(chars[i]);
        i += 1;
    }
    s
}

/// Plain text with bare http(s) URLs turned into links.
fn push_plain_with_urls(out: &mut Vec<Node>, text: &str, marks: &[Mark]) {
    let has_link = marks.iter().any(|m| matches!(m, Mark::Link { .. }));
    let mut rest = text;
    if !has_link {
        loop {
            let pos = match (rest.find("http://"), rest.find("https://")) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            let (before, url_start) = rest.split_at(pos);
            push_with(out, before, marks);
            let end = url_start
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
                .unwrap_or(url_start.len());
            let mut url = &url_start[..end];
            while url.ends_with(['.', ',', ')', ';', ':']) {
                url = &url[..url.len() - 1];
            }
            let mut m = marks.to_vec();
            m.push(Mark::link(url));
            push_with(out, url, &m);
            rest = &url_start[url.len()..];
        }
    }
    push_with(out, rest, marks);
}
