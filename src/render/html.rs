//! The HTML report (`report --format html`): one self-contained page, a picture of a run.
//! No external script, style, font or image: styles and the small table filter are inline,
//! charts are inline SVG. It holds summaries and the first rows that did not succeed (with
//! the count of the rest), so a 1M-row run makes a page of a few hundred KB at most.
//!
//! The markup is well-formed (every element closed, every attribute quoted, all text
//! escaped), so a test can check its structure with a few lines instead of a parser.
use std::fmt::Write;

use super::{count, rate, timing};
use crate::store::RunInfo;
use crate::summary::{RowOutcome, RunCounts};

/// Rows that did not succeed, listed in the table; the rest are counted.
pub const FAILED_ROWS_SHOWN: usize = 1000;

/// Bars of the calls-over-time chart.
const TIME_BUCKETS: usize = 60;

/// A row that did not succeed, for the table.
#[derive(Debug, Clone)]
pub struct FailedRow {
    pub line: u64,
    pub record_id: String,
    pub outcome: RowOutcome,
    pub code: String,
    pub message: String,
}

/// Field values a column asked for, by how their rows ended.
#[derive(Debug, Clone, Default)]
pub struct FieldChanges {
    pub field: String,
    pub succeeded: u64,
    pub not_succeeded: u64,
}

/// Calls in one slice of the run's time.
#[derive(Debug, Clone, Default)]
pub struct TimeBucket {
    pub calls: u64,
    pub answered: u64,
    pub latency_ms_sum: u64,
    pub latency_ms_max: u64,
}

/// Everything the page shows.
pub struct HtmlReport<'a> {
    pub run: &'a RunInfo,
    pub counts: &'a RunCounts,
    pub fields: Vec<FieldChanges>,
    pub failed: Vec<FailedRow>,
    /// All rows that did not succeed (`failed` holds the first of them).
    pub failed_total: u64,
    /// Calls over time, and the seconds one bucket spans.
    pub timeline: Vec<TimeBucket>,
    pub bucket_secs: f64,
}

/// Puts logged calls (start offset in seconds from the first, latency) into buckets.
pub fn timeline(calls: &[(f64, u64, bool)]) -> (Vec<TimeBucket>, f64) {
    let span = calls.iter().map(|c| c.0).fold(0.0, f64::max);
    if calls.is_empty() {
        return (Vec::new(), 0.0);
    }
    let buckets = TIME_BUCKETS.min(calls.len()).max(1);
    let width = (span / buckets as f64).max(0.001);
    let mut out = vec![TimeBucket::default(); buckets];
    for &(at, latency, answered) in calls {
        let b = ((at / width) as usize).min(buckets - 1);
        let bucket = &mut out[b];
        bucket.calls += 1;
        bucket.answered += u64::from(answered);
        bucket.latency_ms_sum += latency;
        bucket.latency_ms_max = bucket.latency_ms_max.max(latency);
    }
    (out, width)
}

/// Escapes text for HTML element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222;max-width:70em}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}\
table{border-collapse:collapse}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.muted{color:#777}svg text{font-size:12px;fill:#222}input,select{margin:.3em .5em .6em 0;padding:.2em}";

const SCRIPT: &str = "function massupFilter(){\
var q=document.getElementById('q').value.toLowerCase();\
var o=document.getElementById('o').value;\
var rows=document.querySelectorAll('#failed tbody tr');\
for(var i=0;i<rows.length;i++){var r=rows[i];\
var ok=(o===''||r.getAttribute('data-outcome')===o)&&r.textContent.toLowerCase().indexOf(q)>=0;\
r.style.display=ok?'':'none';}}";

fn colour(outcome: RowOutcome) -> &'static str {
    match outcome {
        RowOutcome::Succeeded => "#3a9d5d",
        RowOutcome::Retryable => "#e0a030",
        RowOutcome::Pending => "#8a8fa0",
        RowOutcome::Failed => "#d0453a",
        RowOutcome::Invalid => "#9b59b6",
    }
}

/// A horizontal bar chart: one bar per (label, value, colour).
fn hbars(title: &str, bars: &[(String, u64, &str)]) -> String {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (190.0, 420.0, 22.0);
    let height = row_h * bars.len().max(1) as f64 + 10.0;
    let mut svg = format!(
        "<svg role=\"img\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\"><title>{}</title>",
        escape(title),
        w = label_w + bar_w + 90.0
    );
    for (i, (label, value, fill)) in bars.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        let width = if *value == 0 {
            0.0
        } else {
            (*value as f64 / max as f64 * bar_w).max(1.0)
        };
        let _ = write!(
            svg,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{width:.1}\" height=\"{h}\" fill=\"{fill}\"></rect><text x=\"{vx:.1}\" y=\"{ty}\">{}</text>",
            escape(label),
            count(*value),
            lx = label_w - 6.0,
            ty = y + 14.0,
            h = row_h - 6.0,
            vx = label_w + width + 6.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Calls per bucket as bars, mean latency as a line on its own scale.
fn time_chart(buckets: &[TimeBucket], bucket_secs: f64) -> String {
    if buckets.is_empty() {
        return "<p class=\"muted\">No calls logged.</p>".into();
    }
    let (w, h, left, bottom) = (640.0, 180.0, 40.0, 24.0);
    let plot_h = h - bottom - 10.0;
    let bar_w = (w - left - 40.0) / buckets.len() as f64;
    let max_calls = buckets.iter().map(|b| b.calls).max().unwrap_or(1).max(1);
    let mean = |b: &TimeBucket| {
        if b.calls == 0 {
            0.0
        } else {
            b.latency_ms_sum as f64 / b.calls as f64
        }
    };
    let max_latency = buckets.iter().map(mean).fold(1.0, f64::max);
    let mut svg = format!(
        "<svg role=\"img\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><title>Calls and mean latency over time</title>"
    );
    let mut points = Vec::new();
    for (i, b) in buckets.iter().enumerate() {
        let x = left + i as f64 * bar_w;
        let bar_h = b.calls as f64 / max_calls as f64 * plot_h;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar_h:.1}\" fill=\"#7aa6d6\"><title>{} call(s), mean {:.0} ms, max {} ms</title></rect>",
            10.0 + plot_h - bar_h,
            (bar_w - 1.0).max(0.5),
            count(b.calls),
            mean(b),
            count(b.latency_ms_max)
        );
        if b.calls > 0 {
            points.push(format!(
                "{:.1},{:.1}",
                x + bar_w / 2.0,
                10.0 + plot_h - mean(b) / max_latency * plot_h
            ));
        }
    }
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#d0453a\" stroke-width=\"2\"></polyline>",
        points.join(" ")
    );
    let span = bucket_secs * buckets.len() as f64;
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{by}\">0 s</text><text x=\"{rx:.1}\" y=\"{by}\" text-anchor=\"end\">{span:.1} s</text><text x=\"2\" y=\"20\">{}</text><text x=\"{rx:.1}\" y=\"20\" text-anchor=\"end\" fill=\"#d0453a\">{:.0} ms</text></svg>",
        count(max_calls),
        max_latency,
        by = h - 6.0,
        rx = w - 40.0
    );
    svg
}

/// The whole page.
pub fn page(report: &HtmlReport<'_>) -> String {
    let run = report.run;
    let counts = report.counts;
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("massup run {} — {}", run.id, run.module);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><meta name=\"viewport\" content=\"width=device-width\"/><title>{}</title><style>{STYLE}</style></head><body>",
        escape(&title)
    );
    let _ = write!(
        out,
        "<h1>{}</h1><p>{} · {} · state <b id=\"state\">{}</b> · created {}</p>",
        escape(&title),
        escape(&run.csv_path),
        escape(&run.module),
        run.state,
        escape(&run.created_at)
    );
    // The numbers `status --json` gives, each in a cell with an id.
    out.push_str("<h2>Summary</h2><table><tbody>");
    let mut cell = |id: &str, label: &str, value: String| {
        let _ = write!(
            out,
            "<tr><th>{}</th><td class=\"n\" id=\"{id}\">{}</td></tr>",
            escape(label),
            escape(&value)
        );
    };
    cell(
        "input-rows",
        "input rows",
        count(run.input_rows.max(0) as u64),
    );
    for outcome in OUTCOMES {
        cell(
            &format!("rows-{}", outcome.as_str()),
            &format!("rows {}", outcome.as_str()),
            count(counts.rows(outcome)),
        );
    }
    cell(
        "record-updates",
        "record updates",
        count(counts.items.values().sum()),
    );
    cell("credits", "API credits spent", count(counts.credits));
    for (kind, spend) in &counts.spend {
        cell(
            &format!("credits-{kind}"),
            &format!("credits, {kind} ({} calls)", count(spend.calls)),
            count(spend.credits),
        );
    }
    cell("calls", "write calls made", count(counts.calls));
    cell("min-calls", "theoretical minimum", count(counts.min_calls));
    cell("retries", "retries", count(counts.retries));
    let (secs, per_sec) = timing(run, counts);
    cell(
        "sending-secs",
        "time sending",
        secs.map_or_else(|| "-".into(), |s| format!("{s:.1} s")),
    );
    cell(
        "rate",
        "record updates per second",
        per_sec.map_or_else(|| "-".into(), rate),
    );
    out.push_str("</tbody></table>");

    out.push_str("<h2>Rows by outcome</h2>");
    let bars: Vec<(String, u64, &str)> = OUTCOMES
        .iter()
        .map(|&o| (o.as_str().to_string(), counts.rows(o), colour(o)))
        .collect();
    out.push_str(&hbars("Rows by outcome", &bars));

    out.push_str("<h2>Record updates by code</h2>");
    let mut codes: Vec<(String, u64, &str)> = counts
        .items_by_code
        .iter()
        .map(|(code, n)| {
            let fill = if code == crate::codes::SUCCESS {
                "#3a9d5d"
            } else {
                "#d0453a"
            };
            (code.clone(), *n, fill)
        })
        .collect();
    if run.invalid_rows > 0 {
        codes.push((
            "INVALID_ROW (never sent)".into(),
            run.invalid_rows as u64,
            "#9b59b6",
        ));
    }
    codes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if codes.is_empty() {
        out.push_str("<p class=\"muted\">Nothing sent yet.</p>");
    } else {
        out.push_str(&hbars("Record updates by code", &codes));
    }

    out.push_str("<h2>Calls and latency over time</h2><p class=\"muted\">Bars: calls started in each slice of time; line: their mean latency.</p>");
    out.push_str(&time_chart(&report.timeline, report.bucket_secs));

    out.push_str("<h2>Changes per field</h2><p class=\"muted\">Field values the file asked for, by whether their row succeeded.</p>");
    let mut field_bars = Vec::new();
    for f in &report.fields {
        field_bars.push((format!("{} ✓", f.field), f.succeeded, "#3a9d5d"));
        field_bars.push((format!("{} ✗", f.field), f.not_succeeded, "#d0453a"));
    }
    out.push_str(&hbars("Changes per field", &field_bars));

    let _ = write!(
        out,
        "<h2>Rows that did not succeed (<span id=\"not-succeeded\">{}</span>)</h2>",
        count(report.failed_total)
    );
    if report.failed.is_empty() {
        out.push_str("<p>Every row succeeded.</p>");
    } else {
        out.push_str("<label>Filter <input id=\"q\" type=\"search\" oninput=\"massupFilter()\"/></label><select id=\"o\" onchange=\"massupFilter()\"><option value=\"\">any outcome</option>");
        for o in OUTCOMES.iter().filter(|o| **o != RowOutcome::Succeeded) {
            let _ = write!(out, "<option value=\"{0}\">{0}</option>", o.as_str());
        }
        out.push_str("</select><table id=\"failed\"><thead><tr><th>line</th><th>record id</th><th>outcome</th><th>code</th><th>message</th></tr></thead><tbody>");
        for row in &report.failed {
            let _ = write!(
                out,
                "<tr data-outcome=\"{o}\"><td class=\"n\">{}</td><td>{}</td><td>{o}</td><td>{}</td><td>{}</td></tr>",
                row.line,
                escape(&row.record_id),
                escape(&row.code),
                escape(&row.message),
                o = row.outcome.as_str()
            );
        }
        out.push_str("</tbody></table>");
        let rest = report
            .failed_total
            .saturating_sub(report.failed.len() as u64);
        if rest > 0 {
            let _ = write!(
                out,
                "<p id=\"more\">… and {} more. <code>massup report --only failed,retryable,invalid,pending --out rows.csv</code> lists them all.</p>",
                count(rest)
            );
        }
    }
    let _ = writeln!(
        out,
        "<p class=\"muted\">Written by massup {} from the run's database.</p><script>{SCRIPT}</script></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    out
}

const OUTCOMES: [RowOutcome; 5] = [
    RowOutcome::Succeeded,
    RowOutcome::Retryable,
    RowOutcome::Pending,
    RowOutcome::Failed,
    RowOutcome::Invalid,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_content_and_attributes() {
        assert_eq!(
            escape("<a href=\"x\">O'Neil & co</a>"),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
    }

    #[test]
    fn calls_fall_into_at_most_sixty_buckets() {
        let calls: Vec<(f64, u64, bool)> = (0..1000).map(|i| (i as f64 / 10.0, 50, true)).collect();
        let (buckets, width) = timeline(&calls);
        assert_eq!(buckets.len(), 60);
        assert!(width > 1.6 && width < 1.7);
        assert_eq!(buckets.iter().map(|b| b.calls).sum::<u64>(), 1000);
        let (few, _) = timeline(&calls[..3]);
        assert_eq!(few.len(), 3);
        assert!(timeline(&[]).0.is_empty());
    }
}
