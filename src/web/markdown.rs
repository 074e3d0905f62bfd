//! Markdown from the timeline to HTML that is safe to put in a page.
//!
//! Chat text ends up in post-mortems verbatim, and nobody types HTML into Discord meaning it as
//! markup, so raw HTML in the Markdown is shown as the text it is. The result still goes through
//! ammonia's allow-list: no script, no event handler, no style, and links only to http, https
//! and mailto.

use ammonia::UrlRelative;
use pulldown_cmark::{html, Event, Options, Parser};
use std::collections::HashSet;

/// Renders `md` and sanitizes the result.
pub fn to_safe_html(md: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut raw = String::with_capacity(md.len() * 3 / 2);
    let events = Parser::new_ext(md, options).map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
        e => e,
    });
    html::push_html(&mut raw, events);
    ammonia::Builder::default()
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        // A relative link in a draft points nowhere meaningful on this site.
        .url_relative(UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&raw)
        .to_string()
}

/// A link target people may follow from a page: http(s) only, so that stored text cannot
/// smuggle in `javascript:` or `data:`.
pub fn safe_url(url: &str) -> Option<String> {
    let u = url.trim();
    let lower = u.to_ascii_lowercase();
    let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_and_hostile_input_is_inert() {
        let html = to_safe_html(
            "# Post-mortem\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n\
             [runbook](https://wiki.example.com/rb) and [click](javascript:alert(1)) and \
             [data](data:text/html;base64,PHNjcmlwdD4=)\n\n\
             <script>alert(1)</script><img src=x onerror=alert(1)>\n\n\
             \"><svg onload=alert(1)>",
        );
        assert!(html.contains("<h1>Post-mortem</h1>"), "{html}");
        assert!(html.contains("<table>"), "{html}");
        assert!(
            html.contains("href=\"https://wiki.example.com/rb\""),
            "{html}"
        );
        for bad in ["javascript:", "data:text", "<script", "<img", "<svg"] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "typed HTML shows as text: {html}"
        );
    }

    #[test]
    fn only_web_links_are_followed() {
        assert_eq!(
            safe_url(" https://ci.example.com/1 ").as_deref(),
            Some("https://ci.example.com/1")
        );
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,x",
            "//evil.example",
            "https://a b",
        ] {
            assert_eq!(safe_url(bad), None, "{bad}");
        }
    }
}
