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

/// The part of `html` from `start` to the first `end` after it.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in the page"));
    let stop = at + html[at..].find(end).expect("the part ends");
    &html[at..stop]
}

/// A run with a snapshot stopped half-way by `--max-calls`, then resumed and stopped again:
/// pending rows, two invocations, writes and snapshot reads. Returns the page and
/// `status --json`.
async fn interrupted_run() -> (Workspace, String, serde_json::Value) {
    let config = MockConfig {
        records: 200,
        seed: 5,
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 200, false).await;
    let creds = Creds::mock_token();
    // One call at a time, so that each invocation's three calls are a snapshot read and
    // a write in turn (with more in flight, the reads of several chunks could take all
    // three and leave no write on the timeline).
    let extra = [
        "--chunk-size",
        "20",
        "--max-calls",
        "3",
        "--snapshot",
        "--concurrency",
        "1",
    ];
    ws.run(&csv, &extra, &creds).await.expect_code(4);
    ws.again("resume", &["--max-calls", "3"], &creds)
        .await
        .expect_code(4);
    drop(server);
    let out = ws.path().join("interrupted.html");
    let out_arg = out.display().to_string();
    ws.massup(&["report", "--format", "html", "--out", &out_arg], &creds)
        .await
        .expect_code(0);
    let html = std::fs::read_to_string(&out).unwrap();
    let status = ws.massup(&["status", "--json"], &creds).await;
    status.expect_code(0);
    let status = status.json();
    (ws, html, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_shows_pending_apart_from_failed_the_next_commands_and_its_credits() {
    let (_ws, html, status) = interrupted_run().await;
    check_well_formed(&html);
    let rows = &status["counts"]["rows"];
    let pending = rows["pending"].as_u64().unwrap();
    assert!(pending > 0, "{status}");
    assert_eq!(number(&cell(&html, "rows-pending")), pending);
    assert_eq!(
        number(&cell(&html, "rows-failed")),
        rows["failed"].as_u64().unwrap()
    );
    // Changes per field: pending values in pending's grey, none counted as failed.
    let fields = between(&html, "<title>Changes per field</title>", "</svg>");
    assert!(fields.contains("pending</title>"), "{fields}");
    assert!(fields.contains("fill=\"#8a8fa0\""), "{fields}");
    assert!(!fields.contains("failed</title>"), "{fields}");
    assert!(!fields.contains("#d0453a"), "{fields}");

    // The Next box: exactly the commands status gives, resume first; and the undo.
    let next = between(&html, "id=\"next\"", "</div>");
    let commands = status["next"].as_array().unwrap();
    assert!(
        commands[0].as_str().unwrap().contains(" resume --run 1"),
        "{status}"
    );
    for command in commands {
        assert!(
            next.contains(&format!(
                "<code class=\"next-step\">{}</code>",
                command.as_str().unwrap()
            )),
            "{command} in {next}"
        );
    }
    assert!(next.contains(" undo --run 1</code>"), "{next}");
    assert!(next.contains("massup --db "), "{next}");

    // Credits and calls by kind: writes and snapshot reads, as status counts them.
    assert_eq!(
        number(&cell(&html, "credits")),
        status["counts"]["credits"].as_u64().unwrap()
    );
    let spend = status["counts"]["spend"].as_object().unwrap();
    assert!(spend.contains_key("get_records"), "{status}");
    for (kind, spent) in spend {
        assert_eq!(
            number(&cell(&html, &format!("credits-{kind}"))),
            spent["credits"].as_u64().unwrap(),
            "{kind}"
        );
        assert_eq!(
            number(&cell(&html, &format!("calls-{kind}"))),
            spent["calls"].as_u64().unwrap(),
            "{kind}"
        );
    }
    // The timeline covers both invocations, with its axes titled in units.
    let sends = status["counts"]["sends"].as_array().unwrap();
    assert_eq!(sends.len(), 2);
    assert_eq!(html.matches("class=\"invocation\"").count(), 2);
    let chart = between(&html, "<title>Write calls and their mean latency", "</svg>");
    for label in [
        ">run<",
        ">resume<",
        "time sending (s)",
        "mean latency (ms)",
        "calls started per",
    ] {
        assert!(chart.contains(label), "{label} in the timeline");
    }
}

/// Chromium, if this machine has it.
fn chromium() -> Option<std::path::PathBuf> {
    let fixed = std::path::PathBuf::from("/usr/bin/chromium");
    if fixed.exists() {
        return Some(fixed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.exists())
    })
}

/// Runs a browser command to its end, bounded: a headless browser that hangs is killed
/// after two minutes (a guard, not a timing assertion), and the test fails saying so.
async fn bounded(command: &mut tokio::process::Command) -> std::process::Output {
    command
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
        .await
        .expect("chromium did not finish within two minutes")
        .expect("run chromium")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_renders_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        println!("skipped: Chromium is not installed (apt-get install chromium)");
        return;
    };
    let (ws, html, _) = interrupted_run().await;
    let page = format!("file://{}", ws.path().join("interrupted.html").display());
    let dumped = bounded(tokio::process::Command::new(&chromium).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--dump-dom",
        &page,
    ]))
    .await;
    assert!(
        dumped.status.success(),
        "{}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    let dom = String::from_utf8(dumped.stdout).unwrap();
    // The browser built the page as written: every chart, the Next box with its commands,
    // the credits table and every listed row.
    assert_eq!(dom.matches("<svg").count(), html.matches("<svg").count());
    assert_eq!(
        dom.matches("class=\"next-step\"").count(),
        html.matches("class=\"next-step\"").count()
    );
    assert!(dom.contains("id=\"spend\""));
    assert_eq!(
        dom.matches("<tr data-outcome=").count(),
        html.matches("<tr data-outcome=").count()
    );
    // And it draws it: a screenshot of the full-width page.
    let shot = ws.path().join("page.png");
    let drawn = bounded(
        tokio::process::Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1400,2000",
            ])
            .arg(format!("--screenshot={}", shot.display()))
            .arg(&page),
    )
    .await;
    assert!(
        drawn.status.success(),
        "{}",
        String::from_utf8_lossy(&drawn.stderr)
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}
