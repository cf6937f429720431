//! Jira's summary and description limits, and the overflow policy this crate applies.
//!
//! # Limits
//!
//! - **Summary**: at most [`SUMMARY_MAX`] = 255 characters (Jira: "Summary must be less
//!   than 255 characters" / "can't exceed 255 characters"), on one line (Jira rejects
//!   summaries containing newlines).
//! - **Description** (and other rich-text fields, comments): at most
//!   [`DESCRIPTION_MAX`] = 32,767 characters ("The entered text is too long. It exceeds
//!   the allowed limit of 32,767 characters").
//!
//! # How characters are counted
//!
//! Jira is written in Java and checks `String.length()`, which counts **UTF-16 code
//! units**: a character outside the Basic Multilingual Plane (most emoji, some CJK)
//! counts as 2. [`jira_len`] counts the same way, so a text that passes here passes in
//! Jira. For ADF descriptions (Cloud) the limit is checked here against the compact JSON
//! serialization of the document, an upper bound on whatever part of it Jira counts; for
//! wiki markup (Data Center) against the markup text. Both are conservative: a fitted
//! value is never rejected for length, at the price of sometimes cutting a little early.
//!
//! # Overflow policy
//!
//! - **Summary** ([`fit_summary`]): line breaks, tabs and other control characters
//!   become spaces and the ends are trimmed. A summary still longer than 255 is cut on a
//!   character boundary (never inside a surrogate pair) to 254 units, trailing
//!   whitespace removed, and an ellipsis `…` (1 unit) appended. The **full** summary is
//!   returned as overflow and is put at the top of the description as a paragraph
//!   starting with a bold "Full summary:" ([`prepend_full_summary`]), so nothing is lost.
//!   An empty summary stays empty (Jira requires one: validate before calling).
//! - **Description** ([`fit_adf_description`], [`fit_wiki_description`],
//!   [`fit_text`]): a description within the limit is untouched. Otherwise whole
//!   top-level blocks are kept while they fit, the first block that does not fit is cut
//!   inside its text (structure stays valid: lists keep their first items, code blocks
//!   their first lines), and a final italic paragraph [`TRUNCATION_NOTE`] says that the
//!   text was truncated. Plain strings are cut on a character boundary and get the note
//!   on a line of its own.
//! - [`fit_issue_adf`] / [`fit_issue_wiki`] apply both, summary first (its overflow may
//!   lengthen the description), then the description.

use crate::adf::{adf_to_wiki, Document, Mark, Node};

/// Longest summary Jira accepts, in UTF-16 code units.
pub const SUMMARY_MAX: usize = 255;

/// Longest description (rich-text field, comment) Jira accepts, in UTF-16 code units.
pub const DESCRIPTION_MAX: usize = 32_767;

/// Appended to a truncated summary.
pub const ELLIPSIS: &str = "…";

/// The note that ends a truncated description.
pub const TRUNCATION_NOTE: &str =
    "(Truncated: the full text was longer than Jira's limit of 32,767 characters.)";

/// Length as Jira counts it: UTF-16 code units (Java's `String.length()`).
pub fn jira_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The longest prefix of `s`, ending on a character boundary, whose [`jira_len`] is at
/// most `max`.
pub fn truncate_units(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..i];
        }
    }
    s
}

/// A summary made to fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryFit {
    /// The summary to send (one line, at most 255 units).
    pub summary: String,
    /// The full single-line summary when it had to be shortened; put it at the top of
    /// the description ([`prepend_full_summary`]).
    pub overflow: Option<String>,
}

/// Makes a summary fit: one line, at most [`SUMMARY_MAX`] units (see the module docs).
pub fn fit_summary(summary: &str) -> SummaryFit {
    let one_line: String = summary
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = one_line.trim().to_string();
    if jira_len(&one_line) <= SUMMARY_MAX {
        return SummaryFit {
            summary: one_line,
            overflow: None,
        };
    }
    let cut = truncate_units(&one_line, SUMMARY_MAX - jira_len(ELLIPSIS)).trim_end();
    SummaryFit {
        summary: format!("{cut}{ELLIPSIS}"),
        overflow: Some(one_line),
    }
}

/// Puts the full summary at the top of a description.
pub fn prepend_full_summary(doc: &mut Document, full_summary: &str) {
    let text = full_summary.trim();
    if text.is_empty() {
        return;
    }
    doc.content.insert(
        0,
        Node::paragraph(vec![
            Node::marked_text("Full summary:", vec![Mark::Strong]),
            Node::text(format!(" {text}")),
        ]),
    );
}

/// A value made to fit, and whether anything was cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted<T> {
    /// The value to send.
    pub value: T,
    /// Whether it was shortened.
    pub truncated: bool,
}

/// Length of the document's compact JSON, in UTF-16 units.
pub fn adf_len(doc: &Document) -> usize {
    serde_json::to_string(doc)
        .map(|s| jira_len(&s))
        .unwrap_or(usize::MAX)
}

/// Fits an ADF description within `max` units of compact JSON (use
/// [`DESCRIPTION_MAX`]).
pub fn fit_adf_description(doc: &Document, max: usize) -> Fitted<Document> {
    fit_document(doc, max, adf_len)
}

/// Renders a description as wiki markup that fits within `max` units (use
/// [`DESCRIPTION_MAX`]).
pub fn fit_wiki_description(doc: &Document, max: usize) -> Fitted<String> {
    let fitted = fit_document(doc, max, |d| jira_len(&adf_to_wiki(d)));
    Fitted {
        value: adf_to_wiki(&fitted.value),
        truncated: fitted.truncated,
    }
}

/// Fits a plain string (plain text, wiki markup or Markdown already rendered) within
/// `max` units, ending a cut text with [`TRUNCATION_NOTE`] on its own line.
pub fn fit_text(text: &str, max: usize) -> Fitted<String> {
    if jira_len(text) <= max {
        return Fitted {
            value: text.to_string(),
            truncated: false,
        };
    }
    let note = format!("\n\n{TRUNCATION_NOTE}");
    let room = max.saturating_sub(jira_len(&note));
    let value = if room == 0 {
        truncate_units(TRUNCATION_NOTE, max).to_string()
    } else {
        format!("{}{note}", truncate_units(text, room).trim_end())
    };
    Fitted {
        value,
        truncated: true,
    }
}

/// Summary and description made to fit together.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedIssue<T> {
    /// The summary to send.
    pub summary: String,
    /// The description to send (present when one was given or the summary overflowed).
    pub description: Option<T>,
    /// Whether the summary was shortened (its full text then opens the description).
    pub summary_truncated: bool,
    /// Whether the description was shortened.
    pub description_truncated: bool,
}

fn with_summary_overflow(
    summary: &str,
    description: Option<&Document>,
) -> (SummaryFit, Option<Document>) {
    let fit = fit_summary(summary);
    let mut doc = description.cloned();
    if let Some(full) = &fit.overflow {
        let d = doc.get_or_insert_with(Document::default);
        prepend_full_summary(d, full);
    }
    (fit, doc)
}

/// Applies the whole policy for Cloud (ADF description).
pub fn fit_issue_adf(summary: &str, description: Option<&Document>) -> FittedIssue<Document> {
    let (fit, doc) = with_summary_overflow(summary, description);
    let fitted = doc.map(|d| fit_adf_description(&d, DESCRIPTION_MAX));
    FittedIssue {
        summary: fit.summary,
        summary_truncated: fit.overflow.is_some(),
        description_truncated: fitted.as_ref().is_some_and(|f| f.truncated),
        description: fitted.map(|f| f.value),
    }
}

/// Applies the whole policy for Data Center (wiki-markup description).
pub fn fit_issue_wiki(summary: &str, description: Option<&Document>) -> FittedIssue<String> {
    let (fit, doc) = with_summary_overflow(summary, description);
    let fitted = doc.map(|d| fit_wiki_description(&d, DESCRIPTION_MAX));
    FittedIssue {
        summary: fit.summary,
        summary_truncated: fit.overflow.is_some(),
        description_truncated: fitted.as_ref().is_some_and(|f| f.truncated),
        description: fitted.map(|f| f.value),
    }
}

fn note_block() -> Node {
    Node::paragraph(vec![Node::marked_text(TRUNCATION_NOTE, vec![Mark::Em])])
}

fn fit_document(
    doc: &Document,
    max: usize,
    measure: impl Fn(&Document) -> usize,
) -> Fitted<Document> {
    if measure(doc) <= max {
        return Fitted {
            value: doc.clone(),
            truncated: false,
        };
    }
    let with = |blocks: &[Node], extra: Option<Node>| -> Document {
        let mut content: Vec<Node> = blocks.to_vec();
        content.extend(extra);
        content.push(note_block());
        Document::new(content)
    };
    // Largest number of whole blocks that fit with the note.
    let blocks = &doc.content;
    let (mut lo, mut hi) = (0usize, blocks.len());
    if measure(&with(&[], None)) > max {
        return Fitted {
            value: Document::default(),
            truncated: true,
        };
    }
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if measure(&with(&blocks[..mid], None)) <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let keep = lo;
    let mut best = with(&blocks[..keep], None);
    // Cut the next block inside its text.
    if let Some(next) = blocks.get(keep) {
        let total = text_units(next);
        let (mut lo, mut hi) = (0usize, total);
        let mut found: Option<Node> = None;
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            let mut budget = mid;
            match cut_node(next, &mut budget) {
                Some(part) => {
                    let candidate = with(&blocks[..keep], Some(part.clone()));
                    if measure(&candidate) <= max {
                        lo = mid;
                        found = Some(part);
                    } else {
                        hi = mid - 1;
                    }
                }
                None => lo = mid,
            }
        }
        if let Some(part) = found {
            best = with(&blocks[..keep], Some(part));
        }
    }
    Fitted {
        value: best,
        truncated: true,
    }
}

/// Characters of text in a node (atoms count 1).
fn text_units(node: &Node) -> usize {
    match node {
        Node::Text { text, .. } => text.chars().count(),
        n if n.children().is_empty() => 1,
        n => n.children().iter().map(text_units).sum(),
    }
}

/// The first `budget` characters of a node, keeping its structure valid; `None` when
/// nothing of it remains.
fn cut_node(node: &Node, budget: &mut usize) -> Option<Node> {
    if *budget == 0 {
        return None;
    }
    match node {
        Node::Text { text, marks } => {
            let taken: String = text.chars().take(*budget).collect();
            *budget -= taken.chars().count();
            if taken.is_empty() {
                None
            } else {
                Some(Node::Text {
                    text: taken,
                    marks: marks.clone(),
                })
            }
        }
        n if n.children().is_empty() => {
            *budget -= 1;
            match n {
                // Containers that need content cannot survive empty.
                Node::Paragraph { .. } | Node::Heading { .. } | Node::CodeBlock { .. } => None,
                other => Some(other.clone()),
            }
        }
        n => {
            let mut out = n.clone();
            let mut kept = Vec::new();
            for child in n.children() {
                if *budget == 0 {
                    break;
                }
                if let Some(c) = cut_node(child, budget) {
                    kept.push(c);
                }
            }
            if kept.is_empty() {
                return None;
            }
            if matches!(n, Node::ListItem { .. })
                && !matches!(kept.first(), Some(Node::Paragraph { .. }))
            {
                return None;
            }
            if let Some(children) = out.children_mut() {
                *children = kept;
            }
            Some(out)
        }
    }
}
