//! Typed Atlassian Document Format model.
//!
//! Nodes and marks are internally tagged by their `type` field, exactly as ADF
//! writes them. Node or mark types this model does not know (and known types whose
//! shape does not match) are kept verbatim in [`Node::Unknown`] / [`Mark::Unknown`],
//! so reading a document Jira produced never fails and never loses data.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// An ADF document: `{"version": 1, "type": "doc", "content": [...]}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    /// Block nodes.
    pub content: Vec<Node>,
}

impl Document {
    /// The only ADF version there is.
    pub const VERSION: u32 = 1;

    /// A document with the given blocks.
    pub fn new(content: Vec<Node>) -> Self {
        Self { content }
    }

    /// The document as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a document leniently: anything that is not a `doc` object becomes an
    /// empty document, except a single node, which is wrapped.
    pub fn from_value_lossy(value: &Value) -> Self {
        match value {
            Value::Object(map) if map.get("type").and_then(Value::as_str) == Some("doc") => {
                let content = map
                    .get("content")
                    .and_then(Value::as_array)
                    .map(|items| items.iter().map(Node::from_value_lossy).collect())
                    .unwrap_or_default();
                Self { content }
            }
            Value::Object(_) => Self {
                content: vec![Node::from_value_lossy(value)],
            },
            Value::String(s) if !s.is_empty() => Self {
                content: vec![Node::paragraph(vec![Node::text(s.clone())])],
            },
            _ => Self::default(),
        }
    }

    /// Whether the document has no content at all.
    pub fn is_empty(&self) -> bool {
        self.content.is_empty()
    }
}

#[derive(Serialize, Deserialize)]
struct DocRepr {
    version: u32,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: Vec<Node>,
}

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            version: u32,
            #[serde(rename = "type")]
            kind: &'static str,
            content: &'a [Node],
        }
        Out {
            version: Document::VERSION,
            kind: "doc",
            content: &self.content,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = DocRepr::deserialize(deserializer)?;
        if repr.kind != "doc" {
            return Err(serde::de::Error::custom(format!(
                "expected type \"doc\", found {:?}",
                repr.kind
            )));
        }
        Ok(Self {
            content: repr.content,
        })
    }
}

/// `attrs` of a heading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadingAttrs {
    /// 1 to 6.
    pub level: u8,
}

/// `attrs` of an ordered list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OrderedListAttrs {
    /// The number of the first item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u64>,
}

/// `attrs` of a code block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CodeBlockAttrs {
    /// Language name for highlighting (free text; unknown names render monospace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// `attrs` of a task list (and of a decision list).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LocalIdAttrs {
    /// Identifier unique within the document.
    #[serde(rename = "localId", default)]
    pub local_id: String,
}

/// State of a task item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskState {
    /// Open.
    Todo,
    /// Checked.
    Done,
}

/// `attrs` of a task item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskItemAttrs {
    /// Identifier unique within the document.
    #[serde(rename = "localId", default)]
    pub local_id: String,
    /// Open or done.
    pub state: TaskState,
}

/// `attrs` of a panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelAttrs {
    /// `info`, `note`, `tip`, `warning`, `error`, `success` or `custom`.
    #[serde(rename = "panelType")]
    pub panel_type: String,
}

/// `attrs` of an expand / nestedExpand.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExpandAttrs {
    /// The title shown when collapsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// `attrs` of a mention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MentionAttrs {
    /// The account id (Cloud) of the mentioned user.
    pub id: String,
    /// Display text, usually `@Name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `attrs` of an emoji.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmojiAttrs {
    /// Short name such as `:smile:`.
    #[serde(rename = "shortName")]
    pub short_name: String,
    /// The emoji itself, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `attrs` of a status lozenge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusAttrs {
    /// The lozenge text (non-empty).
    pub text: String,
    /// `neutral|purple|blue|red|yellow|green` or `#rrggbb`.
    pub color: String,
}

/// `attrs` of a date node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DateAttrs {
    /// Milliseconds since the Unix epoch, as a string.
    pub timestamp: String,
}

/// `attrs` of a link mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkAttrs {
    /// Target URL.
    pub href: String,
    /// Optional title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// An ADF node. Block and inline nodes share one type, as in ADF itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Node {
    /// A paragraph of inline nodes.
    Paragraph {
        /// Inline content (may be empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        content: Vec<Node>,
        /// Block marks (alignment, indentation).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        marks: Vec<Mark>,
    },
    /// A heading of level 1–6.
    Heading {
        /// Level.
        attrs: HeadingAttrs,
        /// Inline content.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        content: Vec<Node>,
        /// Block marks.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        marks: Vec<Mark>,
    },
    /// A bulleted list of `listItem`s.
    BulletList {
        /// Items (at least one).
        content: Vec<Node>,
    },
    /// A numbered list of `listItem`s.
    OrderedList {
        /// Start number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attrs: Option<OrderedListAttrs>,
        /// Items (at least one).
        content: Vec<Node>,
    },
    /// A list item; its first child is a paragraph.
    ListItem {
        /// Blocks (at least one).
        content: Vec<Node>,
    },
    /// A list of tasks (checkboxes).
    TaskList {
        /// Identifier.
        attrs: LocalIdAttrs,
        /// `taskItem`s and nested `taskList`s.
        content: Vec<Node>,
    },
    /// One task; inline content only.
    TaskItem {
        /// Identifier and state.
        attrs: TaskItemAttrs,
        /// Inline content.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        content: Vec<Node>,
    },
    /// A list of decisions.
    DecisionList {
        /// Identifier.
        attrs: LocalIdAttrs,
        /// `decisionItem`s.
        content: Vec<Node>,
    },
    /// One decision; inline content only.
    DecisionItem {
        /// Identifier and state, kept verbatim.
        #[serde(default, skip_serializing_if = "Value::is_null")]
        attrs: Value,
        /// Inline content.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        content: Vec<Node>,
    },
    /// Preformatted code; content is unmarked text.
    CodeBlock {
        /// Language.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attrs: Option<CodeBlockAttrs>,
        /// Text nodes without marks.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        content: Vec<Node>,
    },
    /// A quotation.
    Blockquote {
        /// Blocks (at least one).
        content: Vec<Node>,
    },
    /// A horizontal rule.
    Rule,
    /// A coloured panel.
    Panel {
        /// Panel type.
        attrs: PanelAttrs,
        /// Blocks.
        content: Vec<Node>,
    },
    /// A collapsible section.
    Expand {
        /// Title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attrs: Option<ExpandAttrs>,
        /// Blocks.
        content: Vec<Node>,
    },
    /// A collapsible section inside a table cell.
    NestedExpand {
        /// Title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attrs: Option<ExpandAttrs>,
        /// Blocks.
        content: Vec<Node>,
    },
    /// A table of `tableRow`s.
    Table {
        /// Layout attributes, kept verbatim.
        #[serde(default, skip_serializing_if = "Value::is_null")]
        attrs: Value,
        /// Rows.
        content: Vec<Node>,
    },
    /// A table row.
    TableRow {
        /// `tableHeader` / `tableCell` nodes.
        content: Vec<Node>,
    },
    /// A header cell.
    TableHeader {
        /// Cell attributes (colspan …), kept verbatim.
        #[serde(default, skip_serializing_if = "Value::is_null")]
        attrs: Value,
        /// Blocks (at least one).
        content: Vec<Node>,
    },
    /// A body cell.
    TableCell {
        /// Cell attributes (colspan …), kept verbatim.
        #[serde(default, skip_serializing_if = "Value::is_null")]
        attrs: Value,
        /// Blocks (at least one).
        content: Vec<Node>,
    },
    /// An image or file with layout.
    MediaSingle {
        /// Layout attributes, kept verbatim.
        #[serde(default, skip_serializing_if = "Value::is_null")]
        attrs: Value,
        /// One `media` node (and maybe a caption).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        content: Vec<Node>,
    },
    /// A group of files.
    MediaGroup {
        /// `media` nodes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        content: Vec<Node>,
    },
    /// One file or image.
    Media {
        /// Attributes (id, collection, alt …), kept verbatim.
        #[serde(default, skip_serializing_if = "Value::is_null")]
        attrs: Value,
    },
    /// Text with marks. The text is never empty.
    Text {
        /// The text.
        text: String,
        /// Marks.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        marks: Vec<Mark>,
    },
    /// A line break inside a paragraph.
    HardBreak,
    /// A user mention.
    Mention {
        /// Who.
        attrs: MentionAttrs,
    },
    /// An emoji.
    Emoji {
        /// Which.
        attrs: EmojiAttrs,
    },
    /// A smart link shown inline.
    InlineCard {
        /// `url` or `data`, kept verbatim.
        attrs: Value,
    },
    /// A smart link shown as a block.
    BlockCard {
        /// `url` or `data`, kept verbatim.
        attrs: Value,
    },
    /// A smart link shown embedded.
    EmbedCard {
        /// `url` and layout, kept verbatim.
        attrs: Value,
    },
    /// A status lozenge.
    Status {
        /// Text and colour.
        attrs: StatusAttrs,
    },
    /// A date.
    Date {
        /// Timestamp.
        attrs: DateAttrs,
    },
    /// Any node this model does not know, kept verbatim.
    #[serde(untagged)]
    Unknown(Value),
}

impl Node {
    /// A text node. Callers must not pass an empty string (ADF forbids empty text).
    pub fn text(text: impl Into<String>) -> Self {
        Node::Text {
            text: text.into(),
            marks: Vec::new(),
        }
    }

    /// A text node with marks.
    pub fn marked_text(text: impl Into<String>, marks: Vec<Mark>) -> Self {
        Node::Text {
            text: text.into(),
            marks,
        }
    }

    /// A paragraph.
    pub fn paragraph(content: Vec<Node>) -> Self {
        Node::Paragraph {
            content,
            marks: Vec::new(),
        }
    }

    /// A heading (level clamped to 1–6).
    pub fn heading(level: u8, content: Vec<Node>) -> Self {
        Node::Heading {
            attrs: HeadingAttrs {
                level: level.clamp(1, 6),
            },
            content,
            marks: Vec::new(),
        }
    }

    /// Reads a node leniently (never fails).
    pub fn from_value_lossy(value: &Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_else(|_| Node::Unknown(value.clone()))
    }

    /// The `type` name of the node.
    pub fn type_name(&self) -> &str {
        match self {
            Node::Paragraph { .. } => "paragraph",
            Node::Heading { .. } => "heading",
            Node::BulletList { .. } => "bulletList",
            Node::OrderedList { .. } => "orderedList",
            Node::ListItem { .. } => "listItem",
            Node::TaskList { .. } => "taskList",
            Node::TaskItem { .. } => "taskItem",
            Node::DecisionList { .. } => "decisionList",
            Node::DecisionItem { .. } => "decisionItem",
            Node::CodeBlock { .. } => "codeBlock",
            Node::Blockquote { .. } => "blockquote",
            Node::Rule => "rule",
            Node::Panel { .. } => "panel",
            Node::Expand { .. } => "expand",
            Node::NestedExpand { .. } => "nestedExpand",
            Node::Table { .. } => "table",
            Node::TableRow { .. } => "tableRow",
            Node::TableHeader { .. } => "tableHeader",
            Node::TableCell { .. } => "tableCell",
            Node::MediaSingle { .. } => "mediaSingle",
            Node::MediaGroup { .. } => "mediaGroup",
            Node::Media { .. } => "media",
            Node::Text { .. } => "text",
            Node::HardBreak => "hardBreak",
            Node::Mention { .. } => "mention",
            Node::Emoji { .. } => "emoji",
            Node::InlineCard { .. } => "inlineCard",
            Node::BlockCard { .. } => "blockCard",
            Node::EmbedCard { .. } => "embedCard",
            Node::Status { .. } => "status",
            Node::Date { .. } => "date",
            Node::Unknown(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// Child nodes, for nodes that have them.
    pub fn children(&self) -> &[Node] {
        match self {
            Node::Paragraph { content, .. }
            | Node::Heading { content, .. }
            | Node::BulletList { content }
            | Node::OrderedList { content, .. }
            | Node::ListItem { content }
            | Node::TaskList { content, .. }
            | Node::TaskItem { content, .. }
            | Node::DecisionList { content, .. }
            | Node::DecisionItem { content, .. }
            | Node::CodeBlock { content, .. }
            | Node::Blockquote { content }
            | Node::Panel { content, .. }
            | Node::Expand { content, .. }
            | Node::NestedExpand { content, .. }
            | Node::Table { content, .. }
            | Node::TableRow { content }
            | Node::TableHeader { content, .. }
            | Node::TableCell { content, .. }
            | Node::MediaSingle { content, .. }
            | Node::MediaGroup { content } => content,
            _ => &[],
        }
    }

    /// Mutable child nodes, for nodes that have them.
    pub fn children_mut(&mut self) -> Option<&mut Vec<Node>> {
        match self {
            Node::Paragraph { content, .. }
            | Node::Heading { content, .. }
            | Node::BulletList { content }
            | Node::OrderedList { content, .. }
            | Node::ListItem { content }
            | Node::TaskList { content, .. }
            | Node::TaskItem { content, .. }
            | Node::DecisionList { content, .. }
            | Node::DecisionItem { content, .. }
            | Node::CodeBlock { content, .. }
            | Node::Blockquote { content }
            | Node::Panel { content, .. }
            | Node::Expand { content, .. }
            | Node::NestedExpand { content, .. }
            | Node::Table { content, .. }
            | Node::TableRow { content }
            | Node::TableHeader { content, .. }
            | Node::TableCell { content, .. }
            | Node::MediaSingle { content, .. }
            | Node::MediaGroup { content } => Some(content),
            _ => None,
        }
    }

    /// Whether this is an inline node (text, hardBreak, mention, emoji, inlineCard,
    /// status, date).
    pub fn is_inline(&self) -> bool {
        matches!(
            self,
            Node::Text { .. }
                | Node::HardBreak
                | Node::Mention { .. }
                | Node::Emoji { .. }
                | Node::InlineCard { .. }
                | Node::Status { .. }
                | Node::Date { .. }
        ) || matches!(self, Node::Unknown(v) if matches!(
            v.get("type").and_then(Value::as_str),
            Some("inlineExtension" | "placeholder" | "mediaInline")
        ))
    }
}

/// A mark on a text node (or, for alignment/indentation/breakout, on a block).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Mark {
    /// Bold.
    Strong,
    /// Italic.
    Em,
    /// Strikethrough.
    Strike,
    /// Underline.
    Underline,
    /// Inline code; combines only with `link`.
    Code,
    /// Hyperlink.
    Link {
        /// Target.
        attrs: LinkAttrs,
    },
    /// Subscript / superscript (`attrs.type` is `sub` or `sup`).
    Subsup {
        /// Kept verbatim.
        attrs: Value,
    },
    /// Text colour.
    TextColor {
        /// Kept verbatim.
        attrs: Value,
    },
    /// Any other mark, kept verbatim.
    #[serde(untagged)]
    Unknown(Value),
}

impl Mark {
    /// A link mark.
    pub fn link(href: impl Into<String>) -> Self {
        Mark::Link {
            attrs: LinkAttrs {
                href: href.into(),
                title: None,
            },
        }
    }

    /// Order in which marks are written: formatting first, links last. Keeps output
    /// deterministic.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Mark::Strong => 0,
            Mark::Em => 1,
            Mark::Strike => 2,
            Mark::Underline => 3,
            Mark::Subsup { .. } => 4,
            Mark::TextColor { .. } => 5,
            Mark::Unknown(_) => 6,
            Mark::Code => 7,
            Mark::Link { .. } => 8,
        }
    }
}
