//! Conversions construct by construct: Markdown → ADF shapes, ADF (including Jira's own
//! and unknown nodes) → Markdown and plain text, wiki markup both ways.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adf_support;

use jira_client::adf::{
    adf_to_markdown, adf_to_plain_text, adf_to_wiki, markdown_to_adf, markdown_to_adf_with,
    markdown_to_wiki, wiki_to_adf, wiki_to_markdown, Document, MarkdownOptions, Node, SoftBreak,
};
use serde_json::{json, Value};

fn adf(md: &str) -> Value {
    let v = markdown_to_adf(md).to_value();
    adf_support::check_document(&v).unwrap_or_else(|e| panic!("{md:?}: {e}"));
    v
}

fn content(md: &str) -> Value {
    adf(md)["content"].clone()
}

#[test]
fn empty_input_is_an_empty_document() {
    assert_eq!(adf(""), json!({"version": 1, "type": "doc", "content": []}));
    assert_eq!(
        adf("\n\n  \n"),
        json!({"version": 1, "type": "doc", "content": []})
    );
    assert_eq!(adf_to_markdown(&Document::default()), "");
}

#[test]
fn headings_and_marks() {
    assert_eq!(
        content("## Hello *there*"),
        json!([{"type": "heading", "attrs": {"level": 2}, "content": [
            {"type": "text", "text": "Hello "},
            {"type": "text", "text": "there", "marks": [{"type": "em"}]}]}])
    );
    assert_eq!(
        content("***a*** ~~b~~ `c`"),
        json!([{"type": "paragraph", "content": [
            {"type": "text", "text": "a", "marks": [{"type": "strong"}, {"type": "em"}]},
            {"type": "text", "text": " "},
            {"type": "text", "text": "b", "marks": [{"type": "strike"}]},
            {"type": "text", "text": " "},
            {"type": "text", "text": "c", "marks": [{"type": "code"}]}]}])
    );
}

#[test]
fn code_marks_combine_only_with_links() {
    assert_eq!(
        content("**[`x`](https://e.com \"T\")**"),
        json!([{"type": "paragraph", "content": [
            {"type": "text", "text": "x", "marks": [
                {"type": "code"},
                {"type": "link", "attrs": {"href": "https://e.com", "title": "T"}}]}]}])
    );
}

#[test]
fn lists_keep_order_and_nesting() {
    assert_eq!(
        content("3. a\n4. b\n   - c"),
        json!([{"type": "orderedList", "attrs": {"order": 3}, "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "a"}]}]},
            {"type": "listItem", "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "b"}]},
                {"type": "bulletList", "content": [{"type": "listItem", "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "c"}]}]}]}]}]}])
    );
    // An item that starts with code gets an empty paragraph first.
    let c = content("- ```\n  x\n  ```");
    assert_eq!(
        c[0]["content"][0]["content"][0],
        json!({"type": "paragraph"})
    );
    assert_eq!(c[0]["content"][0]["content"][1]["type"], "codeBlock");
}

#[test]
fn task_lists_become_task_items() {
    assert_eq!(
        content("- [ ] a\n- [x] b\n  - [ ] c"),
        json!([{"type": "taskList", "attrs": {"localId": "tasklist-2"}, "content": [
            {"type": "taskItem", "attrs": {"localId": "task-1", "state": "TODO"}, "content": [{"type": "text", "text": "a"}]},
            {"type": "taskItem", "attrs": {"localId": "task-3", "state": "DONE"}, "content": [{"type": "text", "text": "b"}]},
            {"type": "taskList", "attrs": {"localId": "tasklist-1"}, "content": [
                {"type": "taskItem", "attrs": {"localId": "task-2", "state": "TODO"}, "content": [{"type": "text", "text": "c"}]}]}]}])
    );
}

#[test]
fn code_blocks_keep_language_and_text() {
    assert_eq!(
        content("```rust title\nfn x() {}\n```"),
        json!([{"type": "codeBlock", "attrs": {"language": "rust"}, "content": [{"type": "text", "text": "fn x() {}"}]}])
    );
    assert_eq!(content("```\n```"), json!([{"type": "codeBlock"}]));
}

#[test]
fn images_become_links_and_html_stays_text() {
    assert_eq!(
        content("![logo](https://e.com/l.png)"),
        json!([{"type": "paragraph", "content": [{"type": "text", "text": "logo", "marks": [
            {"type": "link", "attrs": {"href": "https://e.com/l.png"}}]}]}])
    );
    assert_eq!(
        content("a <b>x</b>"),
        json!([{"type": "paragraph", "content": [{"type": "text", "text": "a <b>x</b>"}]}])
    );
    assert_eq!(
        content("[x](javascript:alert(1))"),
        json!([{"type": "paragraph", "content": [{"type": "text", "text": "x"}]}])
    );
}

#[test]
fn tables_have_header_and_body_cells() {
    let c = content("| a | b |\n|---|---|\n| 1 |   |");
    assert_eq!(c[0]["type"], "table");
    assert_eq!(c[0]["content"][0]["content"][0]["type"], "tableHeader");
    assert_eq!(c[0]["content"][1]["content"][0]["type"], "tableCell");
    assert_eq!(
        c[0]["content"][1]["content"][1]["content"],
        json!([{"type": "paragraph"}])
    );
}

#[test]
fn soft_breaks_are_configurable() {
    let hard = markdown_to_adf("a\nb").to_value();
    assert_eq!(
        hard["content"][0]["content"][1],
        json!({"type": "hardBreak"})
    );
    let space = markdown_to_adf_with(
        "a\nb",
        &MarkdownOptions {
            soft_break: SoftBreak::Space,
        },
    )
    .to_value();
    assert_eq!(
        space["content"][0]["content"],
        json!([{"type": "text", "text": "a b"}])
    );
}

#[test]
fn markdown_rendering_escapes_and_alternates_list_markers() {
    let doc = Document::new(vec![
        Node::paragraph(vec![Node::text("*not em* 1. [x] <b> a_b _c_ `d` # e")]),
        Node::BulletList {
            content: vec![Node::ListItem {
                content: vec![Node::paragraph(vec![Node::text("one")])],
            }],
        },
        Node::BulletList {
            content: vec![Node::ListItem {
                content: vec![Node::paragraph(vec![Node::text("two")])],
            }],
        },
    ]);
    let md = adf_to_markdown(&doc);
    assert_eq!(
        md,
        "\\*not em\\* 1. \\[x\\] \\<b> a_b \\_c\\_ \\`d\\` # e\n\n- one\n\n* two\n"
    );
    assert_eq!(markdown_to_adf(&md), doc);
}

#[test]
fn jira_adf_with_panels_mentions_and_unknown_nodes_renders() {
    let v = json!({"version": 1, "type": "doc", "content": [
        {"type": "paragraph", "content": [
            {"type": "text", "text": "Hi "},
            {"type": "mention", "attrs": {"id": "5b10a", "text": "@Ann"}},
            {"type": "text", "text": " "},
            {"type": "emoji", "attrs": {"shortName": ":smile:", "text": "😄"}},
            {"type": "text", "text": " "},
            {"type": "status", "attrs": {"text": "DONE", "color": "green"}},
            {"type": "text", "text": " "},
            {"type": "date", "attrs": {"timestamp": "1767225600000"}},
            {"type": "text", "text": " "},
            {"type": "inlineCard", "attrs": {"url": "https://e.com/x"}}]},
        {"type": "panel", "attrs": {"panelType": "info"}, "content": [
            {"type": "paragraph", "content": [{"type": "hardBreak"}, {"type": "text", "text": "sadsadsad"}]}]},
        {"type": "futureNode", "attrs": {"x": 1}, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "kept text"}]}]},
        {"type": "expand", "attrs": {"title": "More"}, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "inside"}]}]},
        {"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [
            {"type": "media", "attrs": {"id": "abc", "type": "file", "collection": "c", "alt": "shot.png"}}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "odd", "marks": [{"type": "fancy"}]}]}
    ]});
    let md = adf_to_markdown(&v);
    assert_eq!(
        md,
        "Hi @Ann 😄 DONE 2026-01-01 <https://e.com/x>\n\n> [!NOTE]\n> sadsadsad\n\nkept text\n\n**More**\n\ninside\n\n\\[attachment: shot.png\\]\n\nodd\n"
    );
    let plain = adf_to_plain_text(&v);
    assert!(
        plain.starts_with("Hi @Ann 😄 DONE 2026-01-01 https://e.com/x\n\n"),
        "{plain}"
    );
    assert!(plain.contains("kept text") && plain.contains("[attachment: shot.png]"));
    // Typed reading keeps unknown nodes verbatim.
    let doc: Document = serde_json::from_value(v.clone()).unwrap();
    assert!(matches!(&doc.content[2], Node::Unknown(u) if u["attrs"]["x"] == 1));
    assert_eq!(doc.to_value(), v);
}

#[test]
fn non_documents_are_read_leniently() {
    assert_eq!(adf_to_markdown(&json!(null)), "");
    assert_eq!(
        adf_to_markdown(&json!("plain *text*")),
        "plain \\*text\\*\n"
    );
    assert_eq!(
        adf_to_markdown(&json!({"type": "paragraph", "content": [{"type": "text", "text": "p"}]})),
        "p\n"
    );
    assert_eq!(adf_to_plain_text(&json!({"content": 5})), "");
}

#[test]
fn plain_text_of_lists_tasks_and_tables() {
    let doc =
        markdown_to_adf("# T\n\n- a\n  - b\n1. c\n\n- [x] d\n\n| h | i |\n|---|---|\n| 1 | 2 |");
    assert_eq!(
        adf_to_plain_text(&doc),
        "T\n\n- a\n  - b\n\n1. c\n\n[x] d\n\nh | i\n1 | 2"
    );
}

#[test]
fn markdown_to_wiki_covers_the_common_constructs() {
    let md = "# Title\n\nSome **bold**, *em*, ~~gone~~, `code` and [link](https://e.com).\n\n- a\n  1. b\n- [ ] task\n\n> quote\n\n```java\nint x;\n```\n\n```\nraw\n```\n\n---\n\n| h1 | h2 |\n|---|---|\n| c1 | c2 |\n";
    let wiki = markdown_to_wiki(md);
    assert_eq!(
        wiki,
        "h1. Title\n\nSome *bold*, _em_, -gone-, {{code}} and [link|https://e.com].\n\n* a\n*# b\n\n* ☐ task\n\nbq. quote\n\n{code:java}\nint x;\n{code}\n\n{noformat}\nraw\n{noformat}\n\n----\n\n||h1||h2||\n|c1|c2|\n"
    );
}

#[test]
fn wiki_text_is_escaped() {
    let wiki =
        markdown_to_wiki("Literal \\*x\\* {macro} [not link] a|b !img! UTF-8 a - b \\\\ back");
    assert_eq!(
        wiki,
        "Literal \\*x\\* \\{macro\\} \\[not link\\] a\\|b \\!img\\! UTF-8 a \\- b &#92; back\n"
    );
    // Reading it back gives the same text.
    assert_eq!(
        adf_to_plain_text(&wiki_to_adf(&wiki)),
        "Literal *x* {macro} [not link] a|b !img! UTF-8 a - b \\ back"
    );
}

#[test]
fn wiki_to_markdown_reads_jira_wiki() {
    let wiki = "h1. Header 1\n\nLorem *ipsum* _dolor_ -old- +under+ {{mono}} ??cite??\nnext line\\\\after break\n\n{panel:bgColor=#eae6ff}\n{color:#6554c0}Excepteur {color}sint occaecat\n{panel}\n\nh2. Links\n\n* [Google.com|https://www.google.com/]\n* [https://www.facebook.com/]\n** nested\n*# numbered\n# one\n# two\n\n||A||B||\n|1|[x|https://e.com/a?b=1]|\n\n{code:python}\nprint('*not bold*')\n{code}\n\nbq. quoted\n\n{quote}\nmulti\nline\n{quote}\n\n----\n\nSee https://example.com/page. Mention [~jdoe] and !screen.png|thumbnail!";
    let md = wiki_to_markdown(wiki);
    let expected = "# Header 1\n\nLorem **ipsum** *dolor* ~~old~~ under `mono` *cite*\\\nnext line\\\nafter break\n\n> [!NOTE]\n> Excepteur sint occaecat\n\n## Links\n\n- [Google.com](https://www.google.com/)\n- <https://www.facebook.com/>\n  - nested\n\n  1. numbered\n\n1. one\n2. two\n\n| A | B |\n| --- | --- |\n| 1 | [x](https://e.com/a?b=1) |\n\n```python\nprint('*not bold*')\n```\n\n> quoted\n\n> multi\\\n> line\n\n---\n\nSee <https://example.com/page>. Mention @jdoe and screen.png\n";
    assert_eq!(md, expected);
    adf_support::check_document(&wiki_to_adf(wiki).to_value()).unwrap();
}

#[test]
fn wiki_round_trip_of_markdown_keeps_the_document() {
    let md = "# T\n\nA **b** *c* ~~d~~ `e` [f](https://g.example/h).\n\n- i\n  - j\n1. k\n\n> l\n\n```rust\nm\n```\n\n---\n\n| n | o |\n| --- | --- |\n| p | q |\n";
    let doc = markdown_to_adf(md);
    let back = wiki_to_adf(&adf_to_wiki(&doc));
    assert_eq!(adf_to_markdown(&back), adf_to_markdown(&doc));
}

#[test]
fn newlines_inside_text_nodes_do_not_start_blocks() {
    // Text from other tools may carry raw newlines; what follows them must not become a
    // heading, list, quote or setext underline.
    for text in [
        "a\n# b",
        "a\n- b",
        "a\n> b",
        "a\n===",
        "a\n1. b",
        "a \n  # b",
        "x\n    code?",
    ] {
        let doc = Document::new(vec![Node::paragraph(vec![Node::text(text)])]);
        let md = adf_to_markdown(&doc);
        let back = markdown_to_adf(&md);
        assert_eq!(back.content.len(), 1, "{text:?} -> {md:?}");
        assert!(
            matches!(back.content[0], Node::Paragraph { .. }),
            "{text:?} -> {md:?}"
        );
        let plain = adf_to_plain_text(&back).replace('\n', "");
        let expected: String = text.split('\n').map(str::trim_start).collect();
        assert_eq!(
            plain.replace(' ', ""),
            expected.replace(' ', ""),
            "{text:?} -> {md:?}"
        );
    }
}

#[test]
fn github_alerts_become_panels() {
    let md = "> [!WARNING]\n> # Careful\n>\n> - [ ] check\n> > nested\n\n> [!TIP]\n> tip";
    let c = content(md);
    assert_eq!(c[0]["type"], "panel");
    assert_eq!(c[0]["attrs"], json!({"panelType": "warning"}));
    assert_eq!(c[0]["content"][0]["type"], "heading");
    assert_eq!(c[0]["content"][1]["type"], "taskList");
    assert_eq!(c[0]["content"][2]["content"][0]["text"], "nested");
    assert_eq!(c[1]["attrs"], json!({"panelType": "tip"}));
    let back = markdown_to_adf(&adf_to_markdown(&markdown_to_adf(md)));
    assert_eq!(back, markdown_to_adf(md));
    // Inside a list an alert is just its content.
    let c = content("- > [!NOTE]\n  > x");
    assert_eq!(c[0]["content"][0]["content"][0]["content"][0]["text"], "x");
}
