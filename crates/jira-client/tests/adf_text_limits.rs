//! Summary and description limits and the overflow policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adf_support;

use jira_client::adf::{adf_to_plain_text, markdown_to_adf, Document};
use jira_client::text_limits::{
    adf_len, fit_adf_description, fit_issue_adf, fit_issue_wiki, fit_summary, fit_text,
    fit_wiki_description, jira_len, truncate_units, DESCRIPTION_MAX, SUMMARY_MAX, TRUNCATION_NOTE,
};

#[test]
fn length_counts_utf16_units_like_java() {
    assert_eq!(jira_len("abc"), 3);
    assert_eq!(jira_len("é"), 1);
    assert_eq!(jira_len("😀"), 2);
    assert_eq!(jira_len("日本"), 2);
    assert_eq!(truncate_units("😀😀", 3), "😀");
    assert_eq!(truncate_units("a😀", 2), "a");
    assert_eq!(truncate_units("short", 100), "short");
}

#[test]
fn short_summaries_are_kept_on_one_line() {
    let fit = fit_summary("  Fix\nlogin\r\nbug\t ");
    assert_eq!(fit.summary, "Fix login  bug");
    assert_eq!(fit.overflow, None);
    let exact = "x".repeat(SUMMARY_MAX);
    assert_eq!(fit_summary(&exact).summary, exact);
}

#[test]
fn long_summaries_are_cut_with_an_ellipsis_and_keep_the_full_text() {
    let long = format!("{} tail", "word ".repeat(80));
    let fit = fit_summary(&long);
    assert!(jira_len(&fit.summary) <= SUMMARY_MAX);
    assert!(fit.summary.ends_with('…'));
    assert!(!fit.summary.ends_with(" …"));
    assert_eq!(fit.overflow.as_deref(), Some(long.trim()));

    let emoji = "😀".repeat(200);
    let fit = fit_summary(&emoji);
    assert_eq!(jira_len(&fit.summary), 255);
    assert_eq!(fit.summary.chars().filter(|c| *c == '😀').count(), 127);
}

#[test]
fn summary_overflow_opens_the_description() {
    let long = "s".repeat(300);
    let fitted = fit_issue_adf(&long, None);
    assert!(fitted.summary_truncated);
    assert!(!fitted.description_truncated);
    let doc = fitted.description.unwrap();
    let text = adf_to_plain_text(&doc);
    assert_eq!(text, format!("Full summary: {long}"));

    let desc = markdown_to_adf("Original description.");
    let fitted = fit_issue_wiki(&long, Some(&desc));
    let wiki = fitted.description.unwrap();
    assert!(wiki.starts_with("*Full summary:*"), "{wiki}");
    assert!(wiki.contains("Original description."));
    assert!(fit_issue_wiki("short", None).description.is_none());
}

#[test]
fn descriptions_within_the_limit_are_untouched() {
    let doc = markdown_to_adf("# Title\n\nSome **text**.");
    let fitted = fit_adf_description(&doc, DESCRIPTION_MAX);
    assert!(!fitted.truncated);
    assert_eq!(fitted.value, doc);
}

#[test]
fn long_adf_descriptions_are_cut_between_and_inside_blocks() {
    let md: String = (0..3000)
        .map(|i| format!("Paragraph {i} with some words and an emoji 😀.\n\n"))
        .collect();
    let doc = markdown_to_adf(&md);
    assert!(adf_len(&doc) > DESCRIPTION_MAX);
    let fitted = fit_adf_description(&doc, DESCRIPTION_MAX);
    assert!(fitted.truncated);
    assert!(adf_len(&fitted.value) <= DESCRIPTION_MAX);
    // Close to the limit: not cut absurdly early.
    assert!(adf_len(&fitted.value) > DESCRIPTION_MAX - 200);
    adf_support::check_document(&fitted.value.to_value()).unwrap();
    let text = adf_to_plain_text(&fitted.value);
    assert!(text.starts_with("Paragraph 0 with"));
    assert!(text.ends_with(TRUNCATION_NOTE));
}

#[test]
fn cutting_inside_lists_and_code_keeps_valid_structure() {
    let md = format!(
        "Intro\n\n{}\n\n```\n{}\n```\n",
        (0..50)
            .map(|i| format!("- item {i}\n  - nested {i}\n"))
            .collect::<String>(),
        "code line\n".repeat(50)
    );
    let doc = markdown_to_adf(&md);
    let full = adf_len(&doc);
    for max in [400, 900, 1500, 3000, full - 10] {
        let fitted = fit_adf_description(&doc, max);
        assert!(fitted.truncated);
        assert!(adf_len(&fitted.value) <= max, "max {max}");
        adf_support::check_document(&fitted.value.to_value())
            .unwrap_or_else(|e| panic!("max {max}: {e}"));
    }
    // Too small even for the note: an empty document rather than an invalid one.
    let tiny = fit_adf_description(&doc, 20);
    assert_eq!(tiny.value, Document::default());
}

#[test]
fn wiki_descriptions_fit_as_markup() {
    let md: String = (0..5000).map(|i| format!("- item *{i}*\n")).collect();
    let doc = markdown_to_adf(&md);
    let fitted = fit_wiki_description(&doc, DESCRIPTION_MAX);
    assert!(fitted.truncated);
    assert!(jira_len(&fitted.value) <= DESCRIPTION_MAX);
    assert!(
        fitted.value.starts_with("* item _0_"),
        "{}",
        &fitted.value[..40]
    );
    assert!(fitted.value.trim_end().ends_with(&format!(
        "_{}_",
        "(Truncated: the full text was longer than Jira's limit of 32,767 characters.)"
    )));
}

#[test]
fn plain_text_is_cut_with_a_note() {
    let text = "é😀".repeat(20_000);
    let fitted = fit_text(&text, DESCRIPTION_MAX);
    assert!(fitted.truncated);
    assert!(jira_len(&fitted.value) <= DESCRIPTION_MAX);
    assert!(fitted.value.ends_with(TRUNCATION_NOTE));
    assert!(!fit_text("short", DESCRIPTION_MAX).truncated);
}
