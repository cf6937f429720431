//! ADF to Markdown and ADF to plain text.

use serde_json::Value;

use super::model::{Document, Mark, Node, TaskState};

/// Deeper nesting than this renders as plain text (bounds recursion on hostile input).
const MAX_DEPTH: usize = 64;

/// The display text of an inline atom (mention, emoji, status, date, card, unknown).
pub(crate) fn atom_text(node: &Node) -> String {
    match node {
        Node::Mention { attrs } => attrs
            .text
            .clone()
            .unwrap_or_else(|| format!("@{}", attrs.id)),
        Node::Emoji { attrs } => attrs
            .text
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| attrs.short_name.clone()),
        Node::Status { attrs } => attrs.text.clone(),
        Node::Date { attrs } => format_date(&attrs.timestamp),
        Node::InlineCard { attrs } | Node::BlockCard { attrs } | Node::EmbedCard { attrs } => {
            card_url(attrs).unwrap_or_default()
        }
        Node::Media { attrs } => media_text(attrs),
        Node::Unknown(v) => value_text(v, 0),
        Node::Text { text, .. } => text.clone(),
        Node::HardBreak => "\n".to_string(),
        other => {
            let mut s = String::new();
            for child in other.children() {
                s.push_str(&atom_text(child));
            }
            s
        }
    }
}

pub(crate) fn card_url(attrs: &Value) -> Option<String> {
    attrs
        .get("url")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            attrs
                .get("data")
                .and_then(|d| d.get("url"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
}

pub(crate) fn media_text(attrs: &Value) -> String {
    let name = attrs
        .get("alt")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| attrs.get("id").and_then(Value::as_str))
        .unwrap_or("file");
    format!("[attachment: {name}]")
}

fn format_date(timestamp: &str) -> String {
    timestamp
        .parse::<i64>()
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| timestamp.to_string())
}

/// Text inside an unknown JSON node: its `text`, `attrs.text`, then its children.
pub(crate) fn value_text(v: &Value, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return String::new();
    }
    let mut out = String::new();
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        out.push_str(t);
    } else if let Some(t) = v
        .get("attrs")
        .and_then(|a| a.get("text"))
        .and_then(Value::as_str)
    {
        out.push_str(t);
    }
    if let Some(children) = v.get("content").and_then(Value::as_array) {
        let block = children.iter().any(|c| {
            matches!(
                c.get("type").and_then(Value::as_str),
                Some("paragraph" | "heading" | "bulletList" | "orderedList" | "codeBlock")
            )
        });
        let parts: Vec<String> = children.iter().map(|c| value_text(c, depth + 1)).collect();
        out.push_str(&parts.join(if block { "\n" } else { "" }));
    }
    out
}

// ---------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InlineCtx {
    Para,
    Heading,
    Cell,
}

/// Renders a document as CommonMark + GitHub tables and task lists.
pub(crate) fn document_to_markdown(doc: &Document) -> String {
    let mut out = render_blocks(&doc.content, 0);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Bullet,
    Ordered,
    Other,
}

fn family(node: &Node) -> Family {
    match node {
        Node::BulletList { .. } | Node::TaskList { .. } | Node::DecisionList { .. } => {
            Family::Bullet
        }
        Node::OrderedList { .. } => Family::Ordered,
        _ => Family::Other,
    }
}

fn render_blocks(nodes: &[Node], depth: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut prev_family = Family::Other;
    let mut alternate = false;
    // Inline nodes at block level (invalid ADF) are gathered into paragraphs.
    let mut pending_inline: Vec<Node> = Vec::new();
    let flush = |pending: &mut Vec<Node>, parts: &mut Vec<String>| {
        if !pending.is_empty() {
            let text = render_inline(pending, InlineCtx::Para);
            if !text.is_empty() {
                parts.push(text);
            }
            pending.clear();
        }
    };
    for node in nodes {
        if node.is_inline() {
            pending_inline.push(node.clone());
            continue;
        }
        flush(&mut pending_inline, &mut parts);
        let fam = family(node);
        if fam != Family::Other && fam == prev_family {
            alternate = !alternate;
        } else {
            alternate = false;
        }
        prev_family = fam;
        if let Some(text) = render_block(node, depth, alternate) {
            if !text.is_empty() {
                parts.push(text);
            } else {
                prev_family = Family::Other;
            }
        }
    }
    flush(&mut pending_inline, &mut parts);
    parts.join("\n\n")
}

fn indent_lines(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if i == 0 {
            out.push_str(first);
            out.push_str(line);
            if line.is_empty() {
                // "- " with nothing after: keep the marker only.
                while out.ends_with(' ') {
                    out.pop();
                }
            }
        } else if line.is_empty() {
            // Blank lines need no indentation.
        } else {
            out.push_str(rest);
            out.push_str(line);
        }
    }
    out
}

fn quote_lines(text: &str) -> String {
    text.split('\n')
        .map(|l| {
            if l.is_empty() {
                ">".to_string()
            } else {
                format!("> {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_item_blocks(content: &[Node], depth: usize) -> String {
    // Paragraph followed by a list stays tight; other blocks are separated by a blank line.
    let mut out = String::new();
    let mut prev: Option<&Node> = None;
    let mut prev_family = Family::Other;
    let mut alternate = false;
    for node in content {
        let fam = family(node);
        if fam != Family::Other && fam == prev_family {
            alternate = !alternate;
        } else {
            alternate = false;
        }
        prev_family = fam;
        let text = if node.is_inline() {
            render_inline(std::slice::from_ref(node), InlineCtx::Para)
        } else {
            render_block(node, depth, alternate).unwrap_or_default()
        };
        if let Some(p) = prev {
            let tight = matches!(p, Node::Paragraph { .. }) && fam != Family::Other;
            out.push_str(if tight { "\n" } else { "\n\n" });
        }
        out.push_str(&text);
        prev = Some(node);
    }
    out
}

fn render_block(node: &Node, depth: usize, alternate: bool) -> Option<String> {
    if depth > MAX_DEPTH {
        let text = atom_text(node);
        return Some(escape_text(&text.replace('\n', " "), InlineCtx::Para, true));
    }
    let bullet = if alternate { "*" } else { "-" };
    Some(match node {
        Node::Paragraph { content, .. } => render_inline(content, InlineCtx::Para),
        Node::Heading { attrs, content, .. } => {
            let level = attrs.level.clamp(1, 6) as usize;
            let text = render_inline(content, InlineCtx::Heading);
            if text.is_empty() {
                return Some(String::new());
            }
            format!("{} {}", "#".repeat(level), text)
        }
        Node::BulletList { content } => content
            .iter()
            .map(|item| {
                let body = render_item_blocks(item.children(), depth + 1);
                indent_lines(&body, &format!("{bullet} "), "  ")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Node::OrderedList { attrs, content } => {
            let start = attrs.as_ref().and_then(|a| a.order).unwrap_or(1);
            let delim = if alternate { ")" } else { "." };
            content
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let marker = format!("{}{delim} ", start.saturating_add(i as u64));
                    let body = render_item_blocks(item.children(), depth + 1);
                    indent_lines(&body, &marker, &" ".repeat(marker.len()))
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        Node::TaskList { content, .. } => {
            let mut lines: Vec<String> = Vec::new();
            for child in content {
                match child {
                    Node::TaskItem { attrs, content } => {
                        let check = if attrs.state == TaskState::Done {
                            "x"
                        } else {
                            " "
                        };
                        let text = render_inline(content, InlineCtx::Para);
                        lines.push(indent_lines(&text, &format!("{bullet} [{check}] "), "  "));
                    }
                    Node::TaskList { .. } => {
                        let nested = render_block(child, depth + 1, false).unwrap_or_default();
                        lines.push(indent_lines(&nested, "  ", "  "));
                    }
                    other => {
                        let text = render_block(other, depth + 1, false).unwrap_or_default();
                        lines.push(indent_lines(&text, &format!("{bullet} "), "  "));
                    }
                }
            }
            lines.join("\n")
        }
        Node::DecisionList { content, .. } => content
            .iter()
            .map(|item| {
                let text = render_inline(item.children(), InlineCtx::Para);
                indent_lines(&text, &format!("{bullet} "), "  ")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Node::ListItem { content } | Node::DecisionItem { content, .. } => {
            render_item_blocks(content, depth + 1)
        }
        Node::TaskItem { content, .. } => render_inline(content, InlineCtx::Para),
        Node::CodeBlock { attrs, content } => {
            let mut code = String::new();
            for n in content {
                code.push_str(&atom_text(n));
            }
            let lang = attrs
                .as_ref()
                .and_then(|a| a.language.clone())
                .unwrap_or_default();
            let lang: String = lang
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '`')
                .collect();
            let mut longest = 0;
            let mut run = 0;
            for c in code.chars() {
                if c == '`' {
                    run += 1;
                    longest = longest.max(run);
                } else {
                    run = 0;
                }
            }
            let fence = "`".repeat(longest.max(2) + 1);
            if code.is_empty() {
                format!("{fence}{lang}\n{fence}")
            } else {
                format!("{fence}{lang}\n{code}\n{fence}")
            }
        }
        Node::Blockquote { content } => {
            let inner = render_blocks(content, depth + 1);
            if inner.is_empty() {
                return Some(String::new());
            }
            quote_lines(&inner)
        }
        Node::Panel { attrs, content } => {
            let inner = render_blocks(content, depth + 1);
            if inner.is_empty() {
                return Some(String::new());
            }
            // A GitHub alert: `> [!NOTE]`.
            let alert = match attrs.panel_type.as_str() {
                "tip" | "success" => "TIP",
                "note" => "IMPORTANT",
                "warning" => "WARNING",
                "error" => "CAUTION",
                _ => "NOTE",
            };
            quote_lines(&format!("[!{alert}]\n{inner}"))
        }
        Node::Expand { attrs, content } | Node::NestedExpand { attrs, content } => {
            let mut parts = Vec::new();
            if let Some(title) = attrs.as_ref().and_then(|a| a.title.clone()) {
                if !title.trim().is_empty() {
                    parts.push(format!(
                        "**{}**",
                        escape_text(title.trim(), InlineCtx::Para, true)
                    ));
                }
            }
            let inner = render_blocks(content, depth + 1);
            if !inner.is_empty() {
                parts.push(inner);
            }
            parts.join("\n\n")
        }
        Node::Rule => "---".to_string(),
        Node::Table { content, .. } => render_table(content, depth),
        Node::MediaSingle { content, .. } | Node::MediaGroup { content } => content
            .iter()
            .filter(|n| matches!(n, Node::Media { .. }))
            .map(|n| escape_text(&atom_text(n), InlineCtx::Para, true))
            .collect::<Vec<_>>()
            .join("\n\n"),
        Node::Media { .. } => escape_text(&atom_text(node), InlineCtx::Para, true),
        Node::BlockCard { attrs } | Node::EmbedCard { attrs } => match card_url(attrs) {
            Some(url) => link_markdown(&escape_text(&url, InlineCtx::Para, true), &url, None),
            None => String::new(),
        },
        Node::TableRow { content }
        | Node::TableHeader { content, .. }
        | Node::TableCell { content, .. } => render_blocks(content, depth + 1),
        Node::Unknown(v) => {
            let children: Vec<Node> = v
                .get("content")
                .and_then(Value::as_array)
                .map(|items| items.iter().map(Node::from_value_lossy).collect())
                .unwrap_or_default();
            if !children.is_empty() {
                render_blocks(&children, depth + 1)
            } else {
                let text = value_text(v, 0);
                if text.is_empty() {
                    String::new()
                } else {
                    render_inline(&[Node::text(text)], InlineCtx::Para)
                }
            }
        }
        inline => render_inline(std::slice::from_ref(inline), InlineCtx::Para),
    })
}

fn cell_text(cell: &Node) -> String {
    let parts: Vec<String> = cell
        .children()
        .iter()
        .map(|b| match b {
            Node::Paragraph { content, .. } | Node::Heading { content, .. } => {
                render_inline(content, InlineCtx::Cell)
            }
            other if other.is_inline() => {
                render_inline(std::slice::from_ref(other), InlineCtx::Cell)
            }
            other => escape_text(&atom_text(other).replace('\n', " "), InlineCtx::Cell, false),
        })
        .filter(|s| !s.is_empty())
        .collect();
    parts.join(" ")
}

fn render_table(rows: &[Node], _depth: usize) -> String {
    let grid: Vec<(bool, Vec<String>)> = rows
        .iter()
        .map(|row| {
            let cells = row.children();
            let header =
                !cells.is_empty() && cells.iter().all(|c| matches!(c, Node::TableHeader { .. }));
            (header, cells.iter().map(cell_text).collect())
        })
        .collect();
    let cols = grid.iter().map(|(_, c)| c.len()).max().unwrap_or(0).max(1);
    let line = |cells: &[String]| -> String {
        let mut s = String::from("|");
        for i in 0..cols {
            s.push(' ');
            s.push_str(cells.get(i).map(String::as_str).unwrap_or(""));
            s.push_str(" |");
        }
        s
    };
    let mut out = Vec::new();
    let mut iter = grid.iter();
    match grid.first() {
        Some((true, cells)) => {
            out.push(line(cells));
            iter.next();
        }
        _ => out.push(line(&[])),
    }
    out.push(format!("|{}", " --- |".repeat(cols)));
    for (_, cells) in iter {
        out.push(line(cells));
    }
    out.join("\n")
}

// --- inline -----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Strong,
    Em,
    Strike,
}

impl Fmt {
    fn delim(self) -> &'static str {
        match self {
            Fmt::Strong => "**",
            Fmt::Em => "*",
            Fmt::Strike => "~~",
        }
    }
}

fn fmts(marks: &[Mark]) -> Vec<Fmt> {
    let mut out = Vec::new();
    if marks.iter().any(|m| matches!(m, Mark::Code)) {
        return out;
    }
    for m in marks {
        let f = match m {
            Mark::Strong => Fmt::Strong,
            Mark::Em => Fmt::Em,
            Mark::Strike => Fmt::Strike,
            _ => continue,
        };
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

fn link_of(node: &Node) -> Option<(&str, Option<&str>)> {
    match node {
        Node::Text { marks, .. } => marks.iter().find_map(|m| match m {
            Mark::Link { attrs } => Some((attrs.href.as_str(), attrs.title.as_deref())),
            _ => None,
        }),
        _ => None,
    }
}

fn render_inline(nodes: &[Node], ctx: InlineCtx) -> String {
    let mut nodes = nodes;
    while let [Node::HardBreak, rest @ ..] = nodes {
        nodes = rest;
    }
    while let [rest @ .., Node::HardBreak] = nodes {
        nodes = rest;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < nodes.len() {
        let link = link_of(&nodes[i]);
        let mut j = i + 1;
        while j < nodes.len() && link_of(&nodes[j]) == link {
            j += 1;
        }
        let at_start = out.is_empty() || out.ends_with('\n');
        let segment = render_formatted(&nodes[i..j], ctx, at_start && link.is_none());
        match link {
            Some((href, title)) => {
                let text = if segment.is_empty() {
                    escape_text(href, ctx, false)
                } else {
                    segment
                };
                out.push_str(&link_markdown(&text, href, title));
            }
            None => out.push_str(&segment),
        }
        i = j;
    }
    out
}

fn is_autolinkable(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    first_ok
        && (2..=32).contains(&scheme.len())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        && !rest.is_empty()
        && !url.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '<' | '>' | '&' | '\\' | '`' | '*' | '_' | '~' | '[' | ']'
                )
        })
}

fn link_markdown(text: &str, href: &str, title: Option<&str>) -> String {
    if title.is_none() && is_autolinkable(href) && text == escape_text(href, InlineCtx::Para, false)
    {
        return format!("<{href}>");
    }
    let dest = if href.is_empty() {
        String::new()
    } else if href
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '(' | ')' | '<' | '>'))
    {
        let mut d = String::from("<");
        for c in href.chars() {
            match c {
                '<' | '>' | '\\' | '&' => {
                    d.push('\\');
                    d.push(c);
                }
                '\n' | '\r' => d.push(' '),
                _ => d.push(c),
            }
        }
        d.push('>');
        d
    } else {
        let mut d = String::new();
        for c in href.chars() {
            if matches!(c, '\\' | '&' | '`' | '*' | '_' | '[' | ']' | '~') {
                d.push('\\');
            }
            d.push(c);
        }
        d
    };
    let title = title
        .map(|t| {
            let mut s = String::from(" \"");
            for c in t.chars() {
                match c {
                    '"' | '\\' | '&' => {
                        s.push('\\');
                        s.push(c);
                    }
                    '\n' | '\r' => s.push(' '),
                    _ => s.push(c),
                }
            }
            s.push('"');
            s
        })
        .unwrap_or_default();
    format!("[{text}]({dest}{title})")
}

fn code_span(text: &str, ctx: InlineCtx) -> String {
    let mut s = text.replace(['\n', '\r'], " ");
    if ctx == InlineCtx::Cell {
        s = s.replace('|', "\\|");
    }
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    let pad = s.starts_with('`')
        || s.ends_with('`')
        || (s.starts_with(' ') && s.ends_with(' ') && !s.chars().all(|c| c == ' '));
    if pad {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// Renders a run of inline nodes that share one link (or none) with emphasis
/// delimiters placed so CommonMark reads them back: whitespace moves outside the
/// delimiters, marks that last longer open first.
fn render_formatted(nodes: &[Node], ctx: InlineCtx, line_start: bool) -> String {
    let mut out = String::new();
    let mut active: Vec<Fmt> = Vec::new();
    let mut pending_ws = String::new();
    let mut at_line_start = line_start;
    for (idx, node) in nodes.iter().enumerate() {
        let (want, text_kind): (Vec<Fmt>, Option<(&str, bool)>) = match node {
            Node::Text { text, marks } => {
                let code = marks.iter().any(|m| matches!(m, Mark::Code));
                (fmts(marks), Some((text.as_str(), code)))
            }
            _ => (active.clone(), None),
        };
        // Whitespace and code cannot carry emphasis of their own: they keep what is open
        // (code inside emphasis reads back as plain code) and open nothing.
        let whitespace_only = matches!(text_kind, Some((t, false)) if t.trim().is_empty());
        let keep_open = whitespace_only || matches!(text_kind, Some((_, true)));
        let want: Vec<Fmt> = if keep_open {
            if whitespace_only {
                active
                    .iter()
                    .copied()
                    .filter(|f| want.contains(f))
                    .collect()
            } else {
                active.clone()
            }
        } else {
            want
        };
        // Close marks that end here (and everything opened after them).
        if let Some(pos) = active.iter().position(|f| !want.contains(f)) {
            for f in active.drain(pos..).rev() {
                out.push_str(f.delim());
            }
        }
        out.push_str(&pending_ws);
        pending_ws.clear();
        match (node, text_kind) {
            (_, Some((text, true))) => {
                let mut new: Vec<Fmt> = want
                    .iter()
                    .copied()
                    .filter(|f| !active.contains(f))
                    .collect();
                new.sort_by_key(|f| std::cmp::Reverse(run_length(nodes, idx, *f)));
                for f in new {
                    out.push_str(f.delim());
                    active.push(f);
                }
                out.push_str(&code_span(text, ctx));
                at_line_start = false;
            }
            (_, Some((text, code))) => {
                let (lead, core, trail) = split_ws(text);
                if core.is_empty() {
                    // Whitespace only.
                    out.push_str(&escape_text(text, ctx, at_line_start));
                    continue;
                }
                out.push_str(&escape_text(lead, ctx, at_line_start));
                if !lead.is_empty() {
                    at_line_start = ctx == InlineCtx::Para && lead.ends_with('\n');
                }
                // Open new marks, longest-running first.
                let mut new: Vec<Fmt> = want
                    .iter()
                    .copied()
                    .filter(|f| !active.contains(f))
                    .collect();
                new.sort_by_key(|f| std::cmp::Reverse(run_length(nodes, idx, *f)));
                for f in new {
                    out.push_str(f.delim());
                    active.push(f);
                }
                if code {
                    out.push_str(&code_span(core, ctx));
                } else {
                    out.push_str(&escape_text(core, ctx, at_line_start && active.is_empty()));
                }
                at_line_start = false;
                pending_ws.push_str(&escape_text(trail, ctx, false));
            }
            (Node::HardBreak, None) => match ctx {
                InlineCtx::Para => {
                    // Emphasis does not survive a line start reliably: close and reopen.
                    for f in active.drain(..).rev() {
                        out.push_str(f.delim());
                    }
                    out.push_str("\\\n");
                    at_line_start = true;
                }
                _ => out.push(' '),
            },
            (other, None) => {
                let text = atom_text(other);
                let text = if ctx == InlineCtx::Para {
                    text
                } else {
                    text.replace('\n', " ")
                };
                if let Node::InlineCard { .. } = other {
                    out.push_str(&link_markdown(&escape_text(&text, ctx, false), &text, None));
                } else {
                    out.push_str(&escape_text(&text, ctx, at_line_start));
                }
                at_line_start = false;
            }
        }
    }
    for f in active.drain(..).rev() {
        out.push_str(f.delim());
    }
    out.push_str(&pending_ws);
    out
}

fn run_length(nodes: &[Node], from: usize, f: Fmt) -> usize {
    nodes[from..]
        .iter()
        .take_while(|n| match n {
            Node::Text { marks, .. } => fmts(marks).contains(&f),
            Node::HardBreak => true,
            _ => false,
        })
        .count()
}

fn split_ws(text: &str) -> (&str, &str, &str) {
    let trimmed_start = text.trim_start();
    let lead = &text[..text.len() - trimmed_start.len()];
    let core = trimmed_start.trim_end();
    let trail = &trimmed_start[core.len()..];
    (lead, core, trail)
}

/// Escapes text so CommonMark reads it back as the same literal text.
fn escape_text(text: &str, ctx: InlineCtx, line_start: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut at_start = line_start;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            match ctx {
                InlineCtx::Para => {
                    out.push_str("\\\n");
                    at_start = true;
                }
                _ => out.push(' '),
            }
            i += 1;
            continue;
        }
        if at_start {
            if c == ' ' || c == '\t' {
                // Leading blanks would be stripped; keep them as entities.
                out.push_str(if c == ' ' { "&#32;" } else { "&#9;" });
                i += 1;
                continue;
            }
            at_start = false;
            if matches!(c, '#' | '>' | '-' | '+' | '=') {
                out.push('\\');
                out.push(c);
                i += 1;
                continue;
            }
            if c.is_ascii_digit() {
                let mut j = i;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                if j < chars.len() && matches!(chars[j], '.' | ')') && j - i <= 9 {
                    out.extend(&chars[i..j]);
                    out.push('\\');
                    out.push(chars[j]);
                    i = j + 1;
                    continue;
                }
            }
        }
        match c {
            '\\' | '`' | '*' | '[' | ']' | '<' | '~' | '|' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '#' if ctx == InlineCtx::Heading => {
                out.push('\\');
                out.push(c);
            }
            '_' => {
                let prev_alnum = i > 0 && chars[i - 1].is_alphanumeric();
                let next_alnum = i + 1 < chars.len() && chars[i + 1].is_alphanumeric();
                if !(prev_alnum && next_alnum) {
                    out.push('\\');
                }
                out.push(c);
            }
            '!' if chars.get(i + 1) == Some(&'[') => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {}
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// Plain text
// ---------------------------------------------------------------------------

/// Renders a document as plain text: blocks separated by blank lines, list items
/// marked with `- ` / `1. ` / `[ ] `, table cells separated by ` | `, no markup.
pub(crate) fn document_to_plain_text(doc: &Document) -> String {
    plain_blocks(&doc.content, 0)
}

fn plain_inline(nodes: &[Node]) -> String {
    let mut s = String::new();
    for n in nodes {
        s.push_str(&atom_text(n));
    }
    s
}

fn plain_blocks(nodes: &[Node], depth: usize) -> String {
    let mut parts = Vec::new();
    let mut inline: Vec<Node> = Vec::new();
    for n in nodes {
        if n.is_inline() {
            inline.push(n.clone());
            continue;
        }
        if !inline.is_empty() {
            parts.push(plain_inline(&inline));
            inline.clear();
        }
        let text = plain_block(n, depth);
        if !text.is_empty() {
            parts.push(text);
        }
    }
    if !inline.is_empty() {
        parts.push(plain_inline(&inline));
    }
    parts.join("\n\n")
}

fn plain_block(node: &Node, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return atom_text(node);
    }
    match node {
        Node::Paragraph { content, .. } | Node::Heading { content, .. } => plain_inline(content),
        Node::BulletList { content } | Node::DecisionList { content, .. } => content
            .iter()
            .map(|item| plain_item("- ", item, depth))
            .collect::<Vec<_>>()
            .join("\n"),
        Node::OrderedList { attrs, content } => {
            let start = attrs.as_ref().and_then(|a| a.order).unwrap_or(1);
            content
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    plain_item(
                        &format!("{}. ", start.saturating_add(i as u64)),
                        item,
                        depth,
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        Node::TaskList { content, .. } => content
            .iter()
            .map(|child| match child {
                Node::TaskItem { attrs, content } => {
                    let mark = if attrs.state == TaskState::Done {
                        "[x] "
                    } else {
                        "[ ] "
                    };
                    indent_lines(&plain_inline(content), mark, "    ")
                }
                other => indent_lines(&plain_block(other, depth + 1), "  ", "  "),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Node::CodeBlock { content, .. } => plain_inline(content),
        Node::Table { content, .. } => content
            .iter()
            .map(|row| {
                row.children()
                    .iter()
                    .map(|cell| plain_blocks(cell.children(), depth + 1).replace('\n', " "))
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Node::Rule => "---".to_string(),
        Node::Expand { attrs, content } | Node::NestedExpand { attrs, content } => {
            let mut parts = Vec::new();
            if let Some(t) = attrs.as_ref().and_then(|a| a.title.clone()) {
                if !t.is_empty() {
                    parts.push(t);
                }
            }
            let inner = plain_blocks(content, depth + 1);
            if !inner.is_empty() {
                parts.push(inner);
            }
            parts.join("\n\n")
        }
        Node::Unknown(v) => value_text(v, 0),
        Node::Media { .. } | Node::BlockCard { .. } | Node::EmbedCard { .. } => atom_text(node),
        other if !other.children().is_empty() => plain_blocks(other.children(), depth + 1),
        other => atom_text(other),
    }
}

fn plain_item(marker: &str, item: &Node, depth: usize) -> String {
    let body = match item {
        Node::ListItem { content } => {
            let mut parts = Vec::new();
            for b in content {
                let t = plain_block(b, depth + 1);
                if !t.is_empty() || parts.is_empty() {
                    parts.push(t);
                }
            }
            parts.join("\n")
        }
        other => plain_block(other, depth + 1),
    };
    indent_lines(&body, marker, &" ".repeat(marker.len()))
}
