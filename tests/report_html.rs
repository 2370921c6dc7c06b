//! `report --format html`: one self-contained page (no external script, style, font or
//! image), well-formed, showing the numbers `status --json` gives for the same run, and
//! listing only the first rows that did not succeed with the count of the rest.

mod support;

use massup::mock::MockConfig;
use support::*;

/// Checks that `html` is well-formed: every element closed in order (void elements
/// self-closed), every attribute value quoted, script and style bodies raw. Returns the
/// element names in document order.
fn check_well_formed(html: &str) -> Vec<String> {
    let rest = html
        .strip_prefix("<!DOCTYPE html>\n")
        .expect("starts with the HTML5 doctype");
    let mut open: Vec<String> = Vec::new();
    let mut seen = Vec::new();
    let mut i = 0;
    while let Some(at) = rest[i..].find('<') {
        let start = i + at;
        let end = start + rest[start..].find('>').expect("every tag ends");
        let tag = &rest[start + 1..end];
        i = end + 1;
        if let Some(name) = tag.strip_prefix('/') {
            let top = open
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(top, name, "</{name}> closes <{top}>");
            continue;
        }
        let self_closed = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name_end = tag.find([' ', '\n']).unwrap_or(tag.len());
        let name = &tag[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "tag name {name:?}"
        );
        // Attributes: name="value", the value without a raw quote.
        let mut attrs = tag[name_end..].trim();
        while !attrs.is_empty() {
            let eq = attrs
                .find('=')
                .unwrap_or_else(|| panic!("attribute without a value in <{tag}>"));
            let key = attrs[..eq].trim();
            assert!(
                key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "attribute {key:?}"
            );
            let value = attrs[eq + 1..]
                .strip_prefix('"')
                .unwrap_or_else(|| panic!("unquoted value in <{tag}>"));
            let close = value.find('"').expect("a closing quote");
            attrs = value[close + 1..].trim_start();
        }
        seen.push(name.to_string());
        if self_closed {
            continue;
        }
        assert!(
            !["meta", "input", "br", "img", "link"].contains(&name),
            "<{name}> must be self-closed"
        );
        if name == "script" || name == "style" {
            let close = format!("</{name}>");
            let body_end = i + rest[i..].find(&close).expect("raw text element closed");
            i = body_end + close.len();
            continue;
        }
        open.push(name.to_string());
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
    assert!(rest[i..].trim().is_empty(), "text after </html>");
    seen
}

/// The text of the element whose id is `id`.
fn cell(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no element {id}"))
        + marker.len();
    let end = at + html[at..].find('<').unwrap();
    html[at..end].to_string()
}

fn number(text: &str) -> u64 {
    text.replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{text:?} is not a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_self_contained_well_formed_and_tells_what_status_tells() {
    let config = MockConfig {
        records: 1200,
        locked_fraction: 1.0,
        unlock_after: 1000,
        seed: 3,
        ..MockConfig::default()
    };
    let (_server, ws, _, csv) = scene(&config, 1200, false).await;
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("12x,<script>alert(1)</script>,\"Berlin\"\n");
    std::fs::write(&csv, text).unwrap();
    let creds = Creds::mock_token();
    ws.run(&csv, &["--chunk-size", "100"], &creds)
        .await
        .expect_code(3);

    let out = ws.path().join("report.html");
    let out_arg = out.display().to_string();
    let ran = ws
        .massup(&["report", "--format", "html", "--out", &out_arg], &creds)
        .await;
    ran.expect_code(0);
    let html = std::fs::read_to_string(&out).unwrap();
    let elements = check_well_formed(&html);
    for needed in ["svg", "table", "script", "style", "input", "select"] {
        assert!(elements.iter().any(|e| e == needed), "no <{needed}>");
    }
    assert!(
        elements.iter().filter(|e| *e == "svg").count() >= 4,
        "four charts"
    );
    // Nothing from elsewhere: no src or href at all, no @import or url() in the style.
    let lower = html.to_lowercase();
    for external in ["src=", "href=", "@import", "url("] {
        assert!(!lower.contains(external), "{external} in the page");
    }
    assert!(!html.contains("<script>alert"), "input text is escaped");
    assert!(html.len() < 400_000, "{} bytes", html.len());

    let status = ws.massup(&["status", "--json"], &creds).await;
    status.expect_code(0);
    let status = status.json();
    assert_eq!(
        number(&cell(&html, "input-rows")),
        status["run"]["input_rows"].as_u64().unwrap()
    );
    for outcome in ["succeeded", "retryable", "pending", "failed", "invalid"] {
        assert_eq!(
            number(&cell(&html, &format!("rows-{outcome}"))),
            status["counts"]["rows"][outcome].as_u64().unwrap(),
            "rows {outcome}"
        );
    }
    for (id, key) in [
        ("calls", "calls"),
        ("min-calls", "min_calls"),
        ("retries", "retries"),
    ] {
        assert_eq!(
            number(&cell(&html, id)),
            status["counts"][key].as_u64().unwrap(),
            "{key}"
        );
    }
    assert_eq!(
        cell(&html, "state"),
        status["run"]["state"].as_str().unwrap()
    );
    // 1,200 retryable rows and one invalid: the first 1,000 listed, the rest counted.
    assert_eq!(number(&cell(&html, "not-succeeded")), 1201);
    assert_eq!(html.matches("<tr data-outcome=").count(), 1000);
    assert!(html.contains("… and 201 more."), "the rest counted");
    for code in status["counts"]["items_by_code"]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(
            html.contains(code.as_str()),
            "code {code} in the codes chart"
        );
    }

    // To stdout too, the same page.
    let ran = ws
        .massup(&["report", "--format", "html", "--out", "-"], &creds)
        .await;
    ran.expect_code(0);
    check_well_formed(&ran.stdout());
}
