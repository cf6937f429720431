//! Markdown (CommonMark + GitHub tables, task lists, strikethrough) to ADF.

use pulldown_cmark::{
    BlockQuoteKind, CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd,
};

use super::model::{
    CodeBlockAttrs, Document, LinkAttrs, LocalIdAttrs, Mark, Node, OrderedListAttrs, PanelAttrs,
    TaskItemAttrs, TaskState,
};

/// How a Markdown soft line break (a plain newline inside a paragraph) is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SoftBreak {
    /// As an ADF `hardBreak`: the line break the author typed stays visible in Jira,
    /// as GitHub shows it in issue and pull-request text. The default.
    #[default]
    HardBreak,
    /// As a space, as CommonMark renders it in documents.
    Space,
}

/// Options for [`markdown_to_adf_with`].
#[derive(Debug, Clone, Default)]
pub struct MarkdownOptions {
    /// Soft line break handling.
    pub soft_break: SoftBreak,
}

/// Nesting of block containers (quotes, lists, items) beyond this depth is flattened
/// into the enclosing container, which bounds recursion on hostile input.
const MAX_CONTAINER_DEPTH: usize = 24;

/// Converts Markdown to an ADF document with default options.
pub fn markdown_to_adf(markdown: &str) -> Document {
    markdown_to_adf_with(markdown, &MarkdownOptions::default())
}

/// Converts Markdown to an ADF document.
pub fn markdown_to_adf_with(markdown: &str, options: &MarkdownOptions) -> Document {
    let blocks = parse_blocks(markdown, options);
    let mut ids = Ids::default();
    Document::new(convert_blocks(blocks, Ctx::Doc, &mut ids))
}

// ---------------------------------------------------------------------------
// Phase 1: events -> block tree
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Blk {
    Para(Vec<Node>),
    Heading(u8, Vec<Node>),
    Code(Option<String>, String),
    Quote(Option<BlockQuoteKind>, Vec<Blk>),
    List {
        start: Option<u64>,
        items: Vec<Item>,
    },
    Rule,
    Table {
        head: Vec<Vec<Node>>,
        rows: Vec<Vec<Vec<Node>>>,
    },
    Html(String),
}

#[derive(Debug, Default)]
struct Item {
    task: Option<bool>,
    blocks: Vec<Blk>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkKind {
    Strong,
    Em,
    Strike,
}

#[derive(Debug, Default)]
struct InlineBuf {
    nodes: Vec<Node>,
    marks: Vec<MarkKind>,
    links: Vec<Option<LinkAttrs>>,
    /// Nesting of images; alt text collects while > 0.
    image_depth: usize,
    image: Option<(String, Option<String>, String)>,
}

impl InlineBuf {
    fn current_link(&self) -> Option<&LinkAttrs> {
        self.links.iter().rev().flatten().next()
    }

    fn marks_for(&self, code: bool) -> Vec<Mark> {
        let mut marks = Vec::new();
        if !code {
            for kind in [MarkKind::Strong, MarkKind::Em, MarkKind::Strike] {
                if self.marks.contains(&kind) {
                    marks.push(match kind {
                        MarkKind::Strong => Mark::Strong,
                        MarkKind::Em => Mark::Em,
                        MarkKind::Strike => Mark::Strike,
                    });
                }
            }
        } else {
            marks.push(Mark::Code);
        }
        if let Some(link) = self.current_link() {
            marks.push(Mark::Link {
                attrs: link.clone(),
            });
        }
        marks
    }

    fn push_text(&mut self, text: &str, code: bool) {
        if let Some((_, _, alt)) = self.image.as_mut() {
            alt.push_str(text);
            return;
        }
        if text.is_empty() {
            return;
        }
        let marks = self.marks_for(code);
        push_text_node(&mut self.nodes, text, marks);
    }

    fn push_multiline(&mut self, text: &str) {
        let mut first = true;
        for line in text.split('\n') {
            if !first {
                self.push_break();
            }
            first = false;
            self.push_text(line.trim_end_matches('\r'), false);
        }
    }

    fn push_break(&mut self) {
        if let Some((_, _, alt)) = self.image.as_mut() {
            alt.push(' ');
            return;
        }
        self.nodes.push(Node::HardBreak);
    }

    fn finish(self) -> Vec<Node> {
        normalize_inline(self.nodes)
    }
}

/// Appends a text node, merging with the previous one when the marks are equal.
pub(crate) fn push_text_node(nodes: &mut Vec<Node>, text: &str, marks: Vec<Mark>) {
    if text.is_empty() {
        return;
    }
    if let Some(Node::Text {
        text: prev,
        marks: prev_marks,
    }) = nodes.last_mut()
    {
        if *prev_marks == marks {
            prev.push_str(text);
            return;
        }
    }
    nodes.push(Node::Text {
        text: text.to_string(),
        marks,
    });
}

/// Merges adjacent text nodes with equal marks, drops empty text, drops hard breaks
/// at the start and end, and sorts marks into their canonical order.
pub(crate) fn normalize_inline(nodes: Vec<Node>) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::with_capacity(nodes.len());
    for node in nodes {
        match node {
            Node::Text { text, mut marks } => {
                marks.sort_by_key(Mark::rank);
                marks.dedup();
                push_text_node(&mut out, &text, marks);
            }
            other => out.push(other),
        }
    }
    while matches!(out.first(), Some(Node::HardBreak)) {
        out.remove(0);
    }
    while matches!(out.last(), Some(Node::HardBreak)) {
        out.pop();
    }
    out
}

fn is_safe_href(href: &str) -> bool {
    let lower: String = href
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    !(lower.starts_with("javascript:")
        || lower.starts_with("vbscript:")
        || lower.starts_with("data:"))
}

enum Frame {
    Root(Vec<Blk>),
    Quote(Option<BlockQuoteKind>, Vec<Blk>),
    List {
        start: Option<u64>,
        items: Vec<Item>,
    },
    Item {
        item: Item,
        inline: InlineBuf,
    },
    Para(InlineBuf),
    Heading(u8, InlineBuf),
    Code(Option<String>, String),
    Html(String),
    Table {
        head: Vec<Vec<Node>>,
        rows: Vec<Vec<Vec<Node>>>,
        in_head: bool,
    },
    Row(Vec<Vec<Node>>),
    Cell(InlineBuf),
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

struct Builder {
    stack: Vec<Frame>,
    suppressed: usize,
    soft_break: SoftBreak,
}

impl Builder {
    fn container_depth(&self) -> usize {
        self.stack
            .iter()
            .filter(|f| {
                matches!(
                    f,
                    Frame::Quote(..) | Frame::List { .. } | Frame::Item { .. }
                )
            })
            .count()
    }

    fn inline(&mut self) -> Option<&mut InlineBuf> {
        match self.stack.last_mut() {
            Some(Frame::Para(buf)) | Some(Frame::Heading(_, buf)) | Some(Frame::Cell(buf)) => {
                Some(buf)
            }
            Some(Frame::Item { inline, .. }) => Some(inline),
            _ => None,
        }
    }

    /// Adds a finished block to the nearest block container.
    fn push_block(&mut self, blk: Blk) {
        for frame in self.stack.iter_mut().rev() {
            match frame {
                Frame::Root(blocks) | Frame::Quote(_, blocks) => {
                    blocks.push(blk);
                    return;
                }
                Frame::Item { item, inline } => {
                    flush_item_inline(item, inline);
                    item.blocks.push(blk);
                    return;
                }
                Frame::List { items, .. } => {
                    // A block directly in a list (only through flattening): give it an item.
                    items.push(Item {
                        task: None,
                        blocks: vec![blk],
                    });
                    return;
                }
                Frame::Cell(buf) => {
                    // Blocks cannot sit in a GFM cell; keep their text.
                    let text = blk_plain_text(&blk);
                    buf.push_text(&text, false);
                    return;
                }
                _ => continue,
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => self.stack.push(Frame::Para(InlineBuf::default())),
            Tag::Heading { level, .. } => self
                .stack
                .push(Frame::Heading(heading_level(level), InlineBuf::default())),
            Tag::BlockQuote(kind) => {
                if self.suppressed > 0 || self.container_depth() >= MAX_CONTAINER_DEPTH {
                    self.suppressed += 1;
                } else {
                    self.stack.push(Frame::Quote(kind, Vec::new()));
                }
            }
            Tag::List(start) => {
                if self.suppressed > 0 || self.container_depth() >= MAX_CONTAINER_DEPTH {
                    self.suppressed += 1;
                } else {
                    self.stack.push(Frame::List {
                        start,
                        items: Vec::new(),
                    });
                }
            }
            Tag::Item => {
                if self.suppressed > 0 {
                    self.suppressed += 1;
                } else {
                    self.stack.push(Frame::Item {
                        item: Item::default(),
                        inline: InlineBuf::default(),
                    });
                }
            }
            Tag::CodeBlock(kind) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split_whitespace()
                        .next()
                        .map(|s| s.to_string())
                        .filter(|s| !s.is_empty()),
                    CodeBlockKind::Indented => None,
                };
                self.stack.push(Frame::Code(lang, String::new()));
            }
            Tag::HtmlBlock => self.stack.push(Frame::Html(String::new())),
            Tag::Table(_) => self.stack.push(Frame::Table {
                head: Vec::new(),
                rows: Vec::new(),
                in_head: false,
            }),
            Tag::TableHead => {
                if let Some(Frame::Table { in_head, .. }) = self.stack.last_mut() {
                    *in_head = true;
                }
                self.stack.push(Frame::Row(Vec::new()));
            }
            Tag::TableRow => self.stack.push(Frame::Row(Vec::new())),
            Tag::TableCell => self.stack.push(Frame::Cell(InlineBuf::default())),
            Tag::Emphasis => self.push_mark(MarkKind::Em),
            Tag::Strong => self.push_mark(MarkKind::Strong),
            Tag::Strikethrough => self.push_mark(MarkKind::Strike),
            Tag::Link {
                dest_url, title, ..
            } => {
                let href = dest_url.to_string();
                let attrs = if is_safe_href(&href) {
                    Some(LinkAttrs {
                        href,
                        title: Some(title.to_string()).filter(|t| !t.is_empty()),
                    })
                } else {
                    None
                };
                if let Some(buf) = self.inline() {
                    buf.links.push(attrs);
                }
            }
            Tag::Image {
                dest_url, title, ..
            } => {
                if let Some(buf) = self.inline() {
                    buf.image_depth += 1;
                    if buf.image_depth == 1 {
                        buf.image = Some((
                            dest_url.to_string(),
                            Some(title.to_string()).filter(|t| !t.is_empty()),
                            String::new(),
                        ));
                    }
                }
            }
            // Not enabled: footnotes, definition lists, metadata, super/subscript.
            _ => {}
        }
    }

    fn push_mark(&mut self, kind: MarkKind) {
        if let Some(buf) = self.inline() {
            buf.marks.push(kind);
        }
    }

    fn pop_mark(&mut self, kind: MarkKind) {
        if let Some(buf) = self.inline() {
            if let Some(pos) = buf.marks.iter().rposition(|k| *k == kind) {
                buf.marks.remove(pos);
            }
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => {
                if matches!(self.stack.last(), Some(Frame::Para(_))) {
                    if let Some(Frame::Para(buf)) = self.stack.pop() {
                        self.push_block(Blk::Para(buf.finish()));
                    }
                }
            }
            TagEnd::Heading(_) => {
                if let Some(Frame::Heading(level, buf)) = self.stack.pop() {
                    let nodes = buf.finish();
                    self.push_block(Blk::Heading(level, nodes));
                }
            }
            TagEnd::BlockQuote(_) => {
                if self.suppressed > 0 {
                    self.suppressed -= 1;
                } else if let Some(Frame::Quote(kind, blocks)) = self.stack.pop() {
                    self.push_block(Blk::Quote(kind, blocks));
                }
            }
            TagEnd::List(_) => {
                if self.suppressed > 0 {
                    self.suppressed -= 1;
                } else if let Some(Frame::List { start, items }) = self.stack.pop() {
                    self.push_block(Blk::List { start, items });
                }
            }
            TagEnd::Item => {
                if self.suppressed > 0 {
                    self.suppressed -= 1;
                    // Keep flattened items apart.
                    if let Some(buf) = self.inline() {
                        buf.push_break();
                    }
                } else if let Some(Frame::Item {
                    mut item,
                    mut inline,
                }) = self.stack.pop()
                {
                    flush_item_inline(&mut item, &mut inline);
                    if let Some(Frame::List { items, .. }) = self.stack.last_mut() {
                        items.push(item);
                    } else {
                        for blk in item.blocks {
                            self.push_block(blk);
                        }
                    }
                }
            }
            TagEnd::CodeBlock => {
                if let Some(Frame::Code(lang, mut text)) = self.stack.pop() {
                    if text.ends_with('\n') {
                        text.pop();
                    }
                    self.push_block(Blk::Code(lang, text));
                }
            }
            TagEnd::HtmlBlock => {
                if let Some(Frame::Html(text)) = self.stack.pop() {
                    self.push_block(Blk::Html(text));
                }
            }
            TagEnd::Table => {
                if let Some(Frame::Table { head, rows, .. }) = self.stack.pop() {
                    self.push_block(Blk::Table { head, rows });
                }
            }
            TagEnd::TableHead => {
                if let Some(Frame::Row(cells)) = self.stack.pop() {
                    if let Some(Frame::Table { head, in_head, .. }) = self.stack.last_mut() {
                        *head = cells;
                        *in_head = false;
                    }
                }
            }
            TagEnd::TableRow => {
                if let Some(Frame::Row(cells)) = self.stack.pop() {
                    if let Some(Frame::Table { rows, .. }) = self.stack.last_mut() {
                        rows.push(cells);
                    }
                }
            }
            TagEnd::TableCell => {
                if let Some(Frame::Cell(buf)) = self.stack.pop() {
                    let nodes = buf.finish();
                    if let Some(Frame::Row(cells)) = self.stack.last_mut() {
                        cells.push(nodes);
                    }
                }
            }
            TagEnd::Emphasis => self.pop_mark(MarkKind::Em),
            TagEnd::Strong => self.pop_mark(MarkKind::Strong),
            TagEnd::Strikethrough => self.pop_mark(MarkKind::Strike),
            TagEnd::Link => {
                if let Some(buf) = self.inline() {
                    buf.links.pop();
                }
            }
            TagEnd::Image => {
                if let Some(buf) = self.inline() {
                    buf.image_depth = buf.image_depth.saturating_sub(1);
                    if buf.image_depth == 0 {
                        if let Some((url, title, alt)) = buf.image.take() {
                            let alt = alt.trim().to_string();
                            let text = if alt.is_empty() { url.clone() } else { alt };
                            let mut marks = buf.marks_for(false);
                            if buf.current_link().is_none() && is_safe_href(&url) && !url.is_empty()
                            {
                                marks.push(Mark::Link {
                                    attrs: LinkAttrs { href: url, title },
                                });
                            }
                            push_text_node(&mut buf.nodes, &text, marks);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => match self.stack.last_mut() {
                Some(Frame::Code(_, buf)) | Some(Frame::Html(buf)) => buf.push_str(&text),
                _ => {
                    if let Some(buf) = self.inline() {
                        buf.push_text(&text, false);
                    }
                }
            },
            Event::Code(text) => {
                if let Some(buf) = self.inline() {
                    buf.push_text(&text, true);
                }
            }
            Event::Html(text) | Event::InlineHtml(text) => match self.stack.last_mut() {
                Some(Frame::Html(buf)) | Some(Frame::Code(_, buf)) => buf.push_str(&text),
                _ => {
                    if let Some(buf) = self.inline() {
                        buf.push_multiline(&text);
                    } else {
                        self.push_block(Blk::Html(text.to_string()));
                    }
                }
            },
            Event::SoftBreak => {
                let soft = self.soft_break;
                if let Some(buf) = self.inline() {
                    match soft {
                        SoftBreak::HardBreak => buf.push_break(),
                        SoftBreak::Space => buf.push_text(" ", false),
                    }
                }
            }
            Event::HardBreak => {
                if let Some(buf) = self.inline() {
                    buf.push_break();
                }
            }
            Event::Rule => self.push_block(Blk::Rule),
            Event::TaskListMarker(checked) => {
                if let Some(Frame::Item { item, .. }) = self.stack.last_mut() {
                    item.task = Some(checked);
                } else if let Some(Frame::Para(_)) = self.stack.last() {
                    // Loose task item: the marker sits inside the paragraph.
                    let len = self.stack.len();
                    if len >= 2 {
                        if let Some(Frame::Item { item, .. }) = self.stack.get_mut(len - 2) {
                            item.task = Some(checked);
                        }
                    }
                }
            }
            Event::FootnoteReference(label) => {
                if let Some(buf) = self.inline() {
                    buf.push_text(&format!("[^{label}]"), false);
                }
            }
            Event::InlineMath(text) | Event::DisplayMath(text) => {
                if let Some(buf) = self.inline() {
                    buf.push_text(&text, true);
                }
            }
        }
    }
}

fn flush_item_inline(item: &mut Item, inline: &mut InlineBuf) {
    if inline.nodes.is_empty() {
        return;
    }
    let nodes = std::mem::take(inline).finish();
    if !nodes.is_empty() {
        item.blocks.push(Blk::Para(nodes));
    }
}

fn parse_blocks(markdown: &str, options: &MarkdownOptions) -> Vec<Blk> {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_TASKLISTS);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_GFM);
    let parser = Parser::new_ext(markdown, opts);
    let mut builder = Builder {
        stack: vec![Frame::Root(Vec::new())],
        suppressed: 0,
        soft_break: options.soft_break,
    };
    for event in parser {
        builder.event(event);
    }
    // Close anything left open (should not happen with a well-behaved parser).
    while builder.stack.len() > 1 {
        let frame = builder.stack.pop();
        if let Some(frame) = frame {
            let blk = match frame {
                Frame::Para(buf) => Some(Blk::Para(buf.finish())),
                Frame::Heading(l, buf) => Some(Blk::Heading(l, buf.finish())),
                Frame::Quote(kind, blocks) => Some(Blk::Quote(kind, blocks)),
                Frame::Code(lang, text) => Some(Blk::Code(lang, text)),
                Frame::Html(text) => Some(Blk::Html(text)),
                _ => None,
            };
            if let Some(blk) = blk {
                builder.push_block(blk);
            }
        }
    }
    match builder.stack.pop() {
        Some(Frame::Root(blocks)) => blocks,
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Phase 2: block tree -> ADF nodes that respect each container's content rules
// ---------------------------------------------------------------------------

/// Where blocks are being placed; each ADF container allows different children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Top level: everything.
    Doc,
    /// listItem: paragraph, lists, taskList, codeBlock.
    ListItem,
    /// blockquote: paragraph, bulletList, orderedList, codeBlock.
    Quote,
    /// panel: paragraph, heading, lists, taskList, codeBlock, rule.
    Panel,
}

#[derive(Default)]
struct Ids {
    lists: usize,
    items: usize,
}

impl Ids {
    fn list(&mut self) -> String {
        self.lists += 1;
        format!("tasklist-{}", self.lists)
    }
    fn item(&mut self) -> String {
        self.items += 1;
        format!("task-{}", self.items)
    }
}

fn convert_blocks(blocks: Vec<Blk>, ctx: Ctx, ids: &mut Ids) -> Vec<Node> {
    let mut out = Vec::new();
    for blk in blocks {
        convert_block(blk, ctx, ids, &mut out);
    }
    out
}

fn add_strong(nodes: Vec<Node>) -> Vec<Node> {
    nodes
        .into_iter()
        .map(|n| match n {
            Node::Text { text, mut marks } => {
                if !marks.iter().any(|m| matches!(m, Mark::Code | Mark::Strong)) {
                    marks.push(Mark::Strong);
                    marks.sort_by_key(Mark::rank);
                }
                Node::Text { text, marks }
            }
            other => other,
        })
        .collect()
}

fn convert_block(blk: Blk, ctx: Ctx, ids: &mut Ids, out: &mut Vec<Node>) {
    match blk {
        Blk::Para(nodes) => {
            if !nodes.is_empty() {
                out.push(Node::paragraph(nodes));
            }
        }
        Blk::Heading(level, nodes) => {
            if nodes.is_empty() {
                return;
            }
            match ctx {
                Ctx::Doc => out.push(Node::heading(level, nodes)),
                Ctx::Panel => out.push(Node::heading(level, nodes)),
                Ctx::ListItem | Ctx::Quote => {
                    out.push(Node::paragraph(normalize_inline(add_strong(nodes))))
                }
            }
        }
        Blk::Code(lang, text) => {
            let content = if text.is_empty() {
                Vec::new()
            } else {
                vec![Node::text(text)]
            };
            out.push(Node::CodeBlock {
                attrs: lang.map(|l| CodeBlockAttrs { language: Some(l) }),
                content,
            });
        }
        Blk::Quote(Some(kind), children) if ctx == Ctx::Doc => {
            let content = convert_blocks(children, Ctx::Panel, ids);
            if !content.is_empty() {
                out.push(Node::Panel {
                    attrs: PanelAttrs {
                        panel_type: panel_type(kind).to_string(),
                    },
                    content,
                });
            }
        }
        Blk::Quote(_, children) => match ctx {
            Ctx::Doc => {
                let content = convert_blocks(children, Ctx::Quote, ids);
                if !content.is_empty() {
                    out.push(Node::Blockquote { content });
                }
            }
            // listItem and panel cannot hold a blockquote and blockquotes do not nest:
            // keep the quoted blocks in place.
            Ctx::ListItem | Ctx::Quote | Ctx::Panel => {
                for child in children {
                    convert_block(child, ctx, ids, out);
                }
            }
        },
        Blk::List { start, items } => convert_list(start, items, ctx, ids, out),
        Blk::Rule => {
            if matches!(ctx, Ctx::Doc | Ctx::Panel) {
                out.push(Node::Rule);
            }
        }
        Blk::Table { head, rows } => match ctx {
            Ctx::Doc => out.push(make_table(head, rows)),
            _ => {
                for row in std::iter::once(head).chain(rows) {
                    let mut nodes = Vec::new();
                    for (i, cell) in row.into_iter().enumerate() {
                        if i > 0 {
                            push_text_node(&mut nodes, " | ", Vec::new());
                        }
                        nodes.extend(cell);
                    }
                    let nodes = normalize_inline(nodes);
                    if !nodes.is_empty() {
                        out.push(Node::paragraph(nodes));
                    }
                }
            }
        },
        Blk::Html(text) => {
            let mut buf = InlineBuf::default();
            buf.push_multiline(text.trim_end_matches(['\n', '\r']));
            let nodes = buf.finish();
            if !nodes.is_empty() {
                out.push(Node::paragraph(nodes));
            }
        }
    }
}

fn make_table(head: Vec<Vec<Node>>, rows: Vec<Vec<Vec<Node>>>) -> Node {
    let cell = |nodes: Vec<Node>| -> Vec<Node> {
        vec![if nodes.is_empty() {
            Node::paragraph(Vec::new())
        } else {
            Node::paragraph(nodes)
        }]
    };
    let mut content = Vec::new();
    if !head.is_empty() {
        content.push(Node::TableRow {
            content: head
                .into_iter()
                .map(|c| Node::TableHeader {
                    attrs: serde_json::Value::Null,
                    content: cell(c),
                })
                .collect(),
        });
    }
    for row in rows {
        if row.is_empty() {
            continue;
        }
        content.push(Node::TableRow {
            content: row
                .into_iter()
                .map(|c| Node::TableCell {
                    attrs: serde_json::Value::Null,
                    content: cell(c),
                })
                .collect(),
        });
    }
    Node::Table {
        attrs: serde_json::Value::Null,
        content,
    }
}

fn convert_list(
    start: Option<u64>,
    items: Vec<Item>,
    ctx: Ctx,
    ids: &mut Ids,
    out: &mut Vec<Node>,
) {
    let tasks_allowed = ctx != Ctx::Quote;
    let mut index: u64 = 0;
    let mut iter = items.into_iter().peekable();
    while let Some(first) = iter.next() {
        let is_task = first.task.is_some() && tasks_allowed;
        let mut run = vec![first];
        while let Some(next) = iter.peek() {
            if (next.task.is_some() && tasks_allowed) == is_task {
                if let Some(n) = iter.next() {
                    run.push(n);
                }
            } else {
                break;
            }
        }
        let run_len = run.len() as u64;
        if is_task {
            let content = task_items(run, ids);
            if !content.is_empty() {
                out.push(Node::TaskList {
                    attrs: LocalIdAttrs {
                        local_id: ids.list(),
                    },
                    content,
                });
            }
        } else {
            let content: Vec<Node> = run
                .into_iter()
                .map(|item| list_item(item, tasks_allowed, ids))
                .collect();
            match start {
                Some(n) => {
                    let order = n.saturating_add(index);
                    out.push(Node::OrderedList {
                        attrs: (order != 1).then_some(OrderedListAttrs { order: Some(order) }),
                        content,
                    })
                }
                None => out.push(Node::BulletList { content }),
            }
        }
        index = index.saturating_add(run_len);
    }
}

fn list_item(item: Item, tasks_allowed: bool, ids: &mut Ids) -> Node {
    let mut blocks = item.blocks;
    if let (Some(checked), false) = (item.task, tasks_allowed) {
        // A task inside a blockquote: keep the checkbox as text.
        let marker = if checked { "[x] " } else { "[ ] " };
        match blocks.first_mut() {
            Some(Blk::Para(nodes)) => nodes.insert(0, Node::text(marker)),
            _ => blocks.insert(0, Blk::Para(vec![Node::text(marker.trim_end())])),
        }
        if let Some(Blk::Para(nodes)) = blocks.first_mut() {
            let taken = std::mem::take(nodes);
            *nodes = normalize_inline(taken);
        }
    }
    let mut content = convert_blocks(blocks, Ctx::ListItem, ids);
    if !matches!(content.first(), Some(Node::Paragraph { .. })) {
        content.insert(0, Node::paragraph(Vec::new()));
    }
    Node::ListItem { content }
}

/// Task items hold inline content only; nested task lists follow their item inside the
/// task list; any other nested block is kept as text after a line break.
fn task_items(run: Vec<Item>, ids: &mut Ids) -> Vec<Node> {
    let mut out = Vec::new();
    for item in run {
        let state = if item.task == Some(true) {
            TaskState::Done
        } else {
            TaskState::Todo
        };
        let mut inline: Vec<Node> = Vec::new();
        let mut nested: Vec<Node> = Vec::new();
        for (i, blk) in item.blocks.into_iter().enumerate() {
            match blk {
                Blk::Para(nodes) if i == 0 => inline.extend(nodes),
                Blk::List { items, .. } if items.iter().all(|it| it.task.is_some()) => {
                    let content = task_items(items, ids);
                    if !content.is_empty() {
                        nested.push(Node::TaskList {
                            attrs: LocalIdAttrs {
                                local_id: ids.list(),
                            },
                            content,
                        });
                    }
                }
                other => {
                    let text = blk_plain_text(&other);
                    for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
                        inline.push(Node::HardBreak);
                        inline.push(Node::text(line.trim()));
                    }
                }
            }
        }
        out.push(Node::TaskItem {
            attrs: TaskItemAttrs {
                local_id: ids.item(),
                state,
            },
            content: normalize_inline(inline),
        });
        out.extend(nested);
    }
    out
}

fn inline_plain(nodes: &[Node], out: &mut String) {
    for n in nodes {
        match n {
            Node::Text { text, .. } => out.push_str(text),
            Node::HardBreak => out.push('\n'),
            _ => {}
        }
    }
}

fn blk_plain_text(blk: &Blk) -> String {
    let mut out = String::new();
    match blk {
        Blk::Para(nodes) | Blk::Heading(_, nodes) => inline_plain(nodes, &mut out),
        Blk::Code(_, text) | Blk::Html(text) => out.push_str(text),
        Blk::Quote(_, children) => {
            let parts: Vec<String> = children.iter().map(blk_plain_text).collect();
            out.push_str(&parts.join("\n"));
        }
        Blk::List { items, .. } => {
            let parts: Vec<String> = items
                .iter()
                .map(|it| {
                    it.blocks
                        .iter()
                        .map(blk_plain_text)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .collect();
            out.push_str(&parts.join("\n"));
        }
        Blk::Rule => {}
        Blk::Table { head, rows } => {
            let mut lines = Vec::new();
            for row in std::iter::once(head).chain(rows.iter()) {
                let cells: Vec<String> = row
                    .iter()
                    .map(|c| {
                        let mut s = String::new();
                        inline_plain(c, &mut s);
                        s
                    })
                    .collect();
                lines.push(cells.join(" | "));
            }
            out.push_str(&lines.join("\n"));
        }
    }
    out
}

/// GitHub alert kind → Jira panel type.
fn panel_type(kind: BlockQuoteKind) -> &'static str {
    match kind {
        BlockQuoteKind::Note => "info",
        BlockQuoteKind::Tip => "tip",
        BlockQuoteKind::Important => "note",
        BlockQuoteKind::Warning => "warning",
        BlockQuoteKind::Caution => "error",
    }
}
