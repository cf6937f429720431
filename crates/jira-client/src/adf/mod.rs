//! Atlassian Document Format (ADF) conversion: Markdown ⇄ ADF, ADF → plain text, and
//! wiki markup (Jira Data Center) ⇄ Markdown through ADF.
//!
//! ADF is the hub: [`markdown_to_adf`] parses Markdown once, and every other format is
//! rendered from a [`Document`] ([`adf_to_markdown`], [`adf_to_plain_text`],
//! [`adf_to_wiki`]). Wiki markup is read into a document by [`wiki_to_adf`].
//!
//! # Markdown → ADF
//!
//! CommonMark plus GitHub tables, task lists and strikethrough. What each construct
//! becomes:
//!
//! | Markdown | ADF |
//! | --- | --- |
//! | paragraph | `paragraph` (empty paragraphs are dropped) |
//! | `#`…`######` | `heading` with `attrs.level` (empty headings are dropped) |
//! | `*em*`, `**strong**`, `~~strike~~` | `em`, `strong`, `strike` marks |
//! | `` `code` `` | `code` mark, combined with nothing but `link` |
//! | `[text](url "title")`, `<url>` | `link` mark (`href`, `title`); `javascript:`, `vbscript:` and `data:` links are dropped, their text kept |
//! | `![alt](url)` | the alt text (or the URL) linked to the image URL: no media node, which would need an upload |
//! | `-` / `1.` lists | `bulletList` / `orderedList` (`attrs.order` when the start is not 1); every `listItem` starts with a paragraph (an empty one is inserted when needed) |
//! | `- [ ]` / `- [x]` | `taskList` / `taskItem` (`state` `TODO`/`DONE`, deterministic `localId`s `tasklist-N` / `task-N`); a list mixing tasks and plain items is split into runs |
//! | fenced / indented code | `codeBlock`, `attrs.language` from the info string's first word |
//! | `>` | `blockquote` |
//! | `> [!NOTE]`, `[!TIP]`, `[!IMPORTANT]`, `[!WARNING]`, `[!CAUTION]` (GitHub alerts) | `panel` of type `info`, `tip`, `note`, `warning`, `error` (at top level; elsewhere the content is kept in place) |
//! | `---` | `rule` |
//! | GitHub table | `table` → `tableRow` → `tableHeader` (first row) / `tableCell`, each holding one paragraph |
//! | hard break (`\` or two spaces) | `hardBreak` |
//! | soft break (newline) | `hardBreak` by default, a space with [`SoftBreak::Space`] |
//! | HTML (block or inline) | literal text |
//!
//! ADF's content rules are enforced where Markdown is more permissive: a `listItem`
//! cannot hold a heading (it becomes a bold paragraph), a blockquote or a table (their
//! content is kept in place, tables as `a | b` lines) or a rule (dropped); a
//! `blockquote` cannot hold headings, quotes, rules, tables or task lists (same
//! treatment; tasks become plain items with a `[ ]`/`[x]` prefix); a `taskItem` holds
//! inline content only (a nested task list follows it, other nested blocks are kept
//! as text after a line break). Text nodes are never empty, marks are sorted, adjacent
//! text with equal marks is merged. Container nesting deeper than 24 is flattened.
//!
//! # ADF → Markdown
//!
//! Any ADF is accepted, including nodes this crate does not know (their text is kept).
//! Text is escaped so that reading the Markdown back gives the same text, adjacent lists
//! alternate their markers (`-`/`*`, `.`/`)`) so they stay separate, and for Markdown
//! this crate produced, `markdown_to_adf(adf_to_markdown(d)) == d`. Panels render as
//! GitHub alerts (`> [!NOTE]`, by panel type; `success` as `TIP`,
//! `custom` as `NOTE`), expands as a bold title plus content, mentions/emoji/status/date as their
//! text, media as `[attachment: name]`.
//!
//! # Wiki markup (Data Center)
//!
//! [`markdown_to_wiki`] renders `h1.`–`h6.`, `*strong*`, `_em_`, `-strike-`, `{{code}}`,
//! `[text|url]`, `*`/`#` lists (nested as `**`, `*#`, …), `||header||` / `|cell|`
//! tables, `bq.` / `{quote}`, `{code:lang}` / `{noformat}`, `----`, `\\` line breaks;
//! tasks render as `☐`/`☑` list items (wiki has no task lists). [`wiki_to_markdown`]
//! reads the same constructs plus `{panel}`, `{color}` (colour dropped), `+underline+`
//! (dropped), `^sup^`/`~sub~` (text kept), `??citation??` (emphasis), `[~user]`,
//! `!image!` and bare URLs.

mod from_markdown;
mod model;
mod to_markdown;
mod wiki;

use std::borrow::Cow;

pub use from_markdown::{markdown_to_adf, markdown_to_adf_with, MarkdownOptions, SoftBreak};
pub use model::{
    CodeBlockAttrs, DateAttrs, Document, EmojiAttrs, ExpandAttrs, HeadingAttrs, LinkAttrs,
    LocalIdAttrs, Mark, MentionAttrs, Node, OrderedListAttrs, PanelAttrs, StatusAttrs,
    TaskItemAttrs, TaskState,
};
pub use wiki::{adf_to_wiki, wiki_to_adf};

/// Anything that can be read as an ADF document: a [`Document`] or raw JSON
/// ([`serde_json::Value`], read leniently with [`Document::from_value_lossy`]).
pub trait AdfInput {
    /// The document.
    fn to_document(&self) -> Cow<'_, Document>;
}

impl AdfInput for Document {
    fn to_document(&self) -> Cow<'_, Document> {
        Cow::Borrowed(self)
    }
}

impl AdfInput for serde_json::Value {
    fn to_document(&self) -> Cow<'_, Document> {
        Cow::Owned(Document::from_value_lossy(self))
    }
}

/// Renders ADF as Markdown (CommonMark + GitHub tables and task lists). Never fails;
/// unknown nodes keep their text.
pub fn adf_to_markdown<D: AdfInput + ?Sized>(doc: &D) -> String {
    to_markdown::document_to_markdown(&doc.to_document())
}

/// Renders ADF as plain text: no markup, blocks separated by blank lines, list items
/// prefixed `- `, `1. ` or `[ ] `/`[x] `, table cells separated by ` | `.
pub fn adf_to_plain_text<D: AdfInput + ?Sized>(doc: &D) -> String {
    to_markdown::document_to_plain_text(&doc.to_document())
}

/// Converts Markdown to Jira wiki markup (for Data Center descriptions and comments).
pub fn markdown_to_wiki(markdown: &str) -> String {
    adf_to_wiki(&markdown_to_adf(markdown))
}

/// Converts Jira wiki markup to Markdown.
pub fn wiki_to_markdown(wiki: &str) -> String {
    adf_to_markdown(&wiki_to_adf(wiki))
}
