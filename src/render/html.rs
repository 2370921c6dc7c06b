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
    /// The id column's cell: a record id, or for a `--match-by` run the key (an email).
    pub record_id: String,
    /// For a `--match-by` run, the record its key found (None when none was found).
    pub record: Option<i64>,
    pub outcome: RowOutcome,
    pub code: String,
    pub message: String,
}

/// Field values a column asked for, by how their rows ended.
#[derive(Debug, Clone, Default)]
pub struct FieldChanges {
    pub field: String,
    /// By outcome, in [`OUTCOMES`] order: a pending value is not a failed one.
    pub by_outcome: [u64; OUTCOMES.len()],
}

impl FieldChanges {
    pub fn add(&mut self, outcome: RowOutcome) {
        self.by_outcome[outcome_index(outcome)] += 1;
    }
}

/// One invocation that sent the run (`run`, `resume`, `retry`), as the timeline lays
/// it out: invocations side by side on an axis of sending time, without the hours between.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub command: String,
    /// Where it starts on the axis, in seconds of sending.
    pub start: f64,
}

/// What the page offers to do next: the commands `status` prints.
#[derive(Debug, Clone, Default)]
pub struct NextSteps {
    /// `status`'s "Next:" lines ([`crate::render::next_steps`]).
    pub commands: Vec<String>,
    /// The command that takes the run back, when it can be undone.
    pub undo: Option<String>,
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
    /// The invocations on the timeline's axis, oldest first.
    pub segments: Vec<Segment>,
    pub next: NextSteps,
}

/// Places logged calls on one axis of sending time that covers every invocation of the
/// run: each call's offset is the time sent before its invocation began plus its time into
/// it, so a `retry` an hour after the `run` follows it directly instead of leaving an hour
/// of nothing. `sends` are (command, started, ended) oldest first; a call belongs to the
/// last invocation started at or before it (calls before the first, from runs sent before
/// invocations were recorded, start the axis). `calls` are (started, latency ms, answered).
/// Returns the calls as (offset secs, latency ms, answered) and the invocations' segments.
pub fn place_calls(
    sends: &[(String, f64, Option<f64>)],
    calls: &[(f64, u64, bool)],
) -> (Vec<(f64, u64, bool)>, Vec<Segment>) {
    // A send's span: until it ended, or (killed) until its last call ended.
    let mut ends: Vec<f64> = sends.iter().map(|s| s.2.unwrap_or(s.1)).collect();
    let mut before_first: Option<(f64, f64)> = None;
    let owner = |at: f64| sends.iter().rposition(|s| s.1 <= at);
    for &(at, latency, _) in calls {
        let end = at + latency as f64 / 1000.0;
        match owner(at) {
            Some(i) => ends[i] = ends[i].max(end),
            None => {
                let (start, last) = before_first.get_or_insert((at, end));
                *start = start.min(at);
                *last = last.max(end);
            }
        }
    }
    let mut segments = Vec::with_capacity(sends.len() + 1);
    let mut axis = 0.0;
    if let Some((start, end)) = before_first {
        segments.push(Segment {
            command: "calls before the first recorded invocation".into(),
            start: 0.0,
        });
        axis = end - start;
    }
    let mut starts = Vec::with_capacity(sends.len());
    for (send, end) in sends.iter().zip(&ends) {
        starts.push(axis);
        segments.push(Segment {
            command: send.0.clone(),
            start: axis,
        });
        axis += (end - send.1).max(0.0);
    }
    let placed = calls
        .iter()
        .map(|&(at, latency, answered)| {
            let offset = match owner(at) {
                Some(i) => starts[i] + (at - sends[i].1),
                None => at - before_first.map_or(at, |b| b.0),
            };
            (offset.max(0.0), latency, answered)
        })
        .collect();
    (placed, segments)
}

/// Puts placed calls (offset in seconds on the axis, latency, answered) into buckets.
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

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em 2em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}\
table{border-collapse:collapse}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}table.wide{width:100%}\
.row{display:flex;flex-wrap:wrap;gap:1em 3em;align-items:flex-start}.row>div{flex:1 1 28em;min-width:0}\
.next{border:2px solid #3a6ea5;border-radius:6px;padding:.2em 1em 1em;background:#f3f7fc}\
.next code{display:block;margin:.3em 0;padding:.3em .5em;background:#fff;border:1px solid #cdd9e6;overflow-wrap:anywhere}\
.legend span{display:inline-block;margin-right:1.2em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}\
svg{max-width:100%;height:auto}.muted{color:#777}svg text{font-size:12px;fill:#222}input,select{margin:.3em .5em .6em 0;padding:.2em}";

const SCRIPT: &str = "function massupFilter(){\
var q=document.getElementById('q').value.toLowerCase();\
var o=document.getElementById('o').value;\
var rows=document.querySelectorAll('#failed tbody tr');\
for(var i=0;i<rows.length;i++){var r=rows[i];\
var ok=(o===''||r.getAttribute('data-outcome')===o)&&r.textContent.toLowerCase().indexOf(q)>=0;\
r.style.display=ok?'':'none';}}";

/// The one colour of each outcome, in every chart and legend: pending (not sent yet, an
/// interrupted run) is grey, never the red of failed.
fn colour(outcome: RowOutcome) -> &'static str {
    match outcome {
        RowOutcome::Succeeded => "#3a9d5d",
        RowOutcome::Retryable => "#e0a030",
        RowOutcome::Pending => "#8a8fa0",
        RowOutcome::Failed => "#d0453a",
        RowOutcome::Invalid => "#9b59b6",
    }
}

/// Colours of the timeline, none of them an outcome's.
const CALLS_FILL: &str = "#7aa6d6";
const LATENCY_STROKE: &str = "#1f3b5c";

fn outcome_index(outcome: RowOutcome) -> usize {
    OUTCOMES
        .iter()
        .position(|&o| o == outcome)
        .expect("every outcome is listed")
}

/// The colour key of the outcomes a chart shows.
fn legend(outcomes: &[RowOutcome]) -> String {
    let mut out = String::from("<p class=\"legend\">");
    for &o in outcomes {
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{}</span>",
            colour(o),
            o.as_str()
        );
    }
    out.push_str("</p>");
    out
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

/// One bar per label, split into outcome segments in [`OUTCOMES`] order and colours.
fn stacked_bars(title: &str, bars: &[(String, [u64; OUTCOMES.len()])]) -> String {
    let total = |b: &[u64; OUTCOMES.len()]| b.iter().sum::<u64>();
    let max = bars.iter().map(|b| total(&b.1)).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (190.0, 620.0, 22.0);
    let height = row_h * bars.len().max(1) as f64 + 10.0;
    let mut svg = format!(
        "<svg role=\"img\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\"><title>{}</title>",
        escape(title),
        w = label_w + bar_w + 480.0
    );
    for (i, (label, by_outcome)) in bars.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        let _ = write!(
            svg,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{}</text>",
            escape(label),
            lx = label_w - 6.0,
            ty = y + 14.0,
        );
        let mut x = label_w;
        let mut parts = Vec::new();
        for (&outcome, &n) in OUTCOMES.iter().zip(by_outcome) {
            if n == 0 {
                continue;
            }
            let width = (n as f64 / max as f64 * bar_w).max(1.0);
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"{h}\" fill=\"{}\"><title>{} {}</title></rect>",
                colour(outcome),
                count(n),
                outcome.as_str(),
                h = row_h - 6.0,
            );
            x += width;
            parts.push(format!("{} {}", count(n), outcome.as_str()));
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\">{}</text>",
            x + 6.0,
            y + 14.0,
            escape(&parts.join(", "))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Calls per bucket as bars, mean latency as a line on its own scale, on an axis of
/// sending time with each invocation marked where it begins.
fn time_chart(buckets: &[TimeBucket], bucket_secs: f64, segments: &[Segment]) -> String {
    if buckets.is_empty() {
        return "<p class=\"muted\">No calls logged.</p>".into();
    }
    let (w, h, left, right, top, bottom) = (1200.0, 260.0, 70.0, 80.0, 24.0, 44.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let base = top + plot_h;
    let bar_w = plot_w / buckets.len() as f64;
    let span = bucket_secs * buckets.len() as f64;
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
        "<svg role=\"img\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><title>Write calls and their mean latency over the run&#39;s sending time</title>"
    );
    // Axes, with their titles and units.
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{base}\" stroke=\"#999\"></line>\
<line x1=\"{left}\" y1=\"{base}\" x2=\"{xr}\" y2=\"{base}\" stroke=\"#999\"></line>\
<line x1=\"{xr}\" y1=\"{top}\" x2=\"{xr}\" y2=\"{base}\" stroke=\"#999\"></line>\
<text x=\"{lt}\" y=\"{ty}\" text-anchor=\"end\">{}</text><text x=\"{lt}\" y=\"{base}\" text-anchor=\"end\">0</text>\
<text x=\"{rt}\" y=\"{ty}\" fill=\"{LATENCY_STROKE}\">{:.0} ms</text><text x=\"{rt}\" y=\"{base}\" fill=\"{LATENCY_STROKE}\">0 ms</text>\
<text x=\"{left}\" y=\"{tick}\" text-anchor=\"middle\">0 s</text><text x=\"{mid:.1}\" y=\"{tick}\" text-anchor=\"middle\">{:.1} s</text><text x=\"{xr}\" y=\"{tick}\" text-anchor=\"middle\">{:.1} s</text>\
<text x=\"{mid:.1}\" y=\"{xt}\" text-anchor=\"middle\">time sending (s), invocations side by side</text>\
<text x=\"14\" y=\"{my:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {my:.1})\">calls started per {}</text>\
<text x=\"{yr}\" y=\"{my:.1}\" text-anchor=\"middle\" fill=\"{LATENCY_STROKE}\" transform=\"rotate(90 {yr} {my:.1})\">mean latency (ms)</text>",
        count(max_calls),
        max_latency,
        span / 2.0,
        span,
        duration(bucket_secs),
        xr = left + plot_w,
        lt = left - 6.0,
        rt = left + plot_w + 6.0,
        ty = top + 4.0,
        tick = base + 16.0,
        mid = left + plot_w / 2.0,
        xt = base + 36.0,
        my = top + plot_h / 2.0,
        yr = w - 14.0,
    );
    let mut points = Vec::new();
    for (i, b) in buckets.iter().enumerate() {
        let x = left + i as f64 * bar_w;
        let bar_h = b.calls as f64 / max_calls as f64 * plot_h;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar_h:.1}\" fill=\"{CALLS_FILL}\"><title>{:.1}-{:.1} s: {} call(s), mean {:.0} ms, max {} ms</title></rect>",
            base - bar_h,
            (bar_w - 1.0).max(0.5),
            i as f64 * bucket_secs,
            (i + 1) as f64 * bucket_secs,
            count(b.calls),
            mean(b),
            count(b.latency_ms_max)
        );
        if b.calls > 0 {
            points.push(format!(
                "{:.1},{:.1}",
                x + bar_w / 2.0,
                base - mean(b) / max_latency * plot_h
            ));
        }
    }
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{LATENCY_STROKE}\" stroke-width=\"2\"></polyline>",
        points.join(" ")
    );
    // Where each invocation begins.
    for (i, segment) in segments.iter().enumerate() {
        let x = left + segment.start / span.max(0.001) * plot_w;
        let x = x.min(left + plot_w);
        let _ = write!(
            svg,
            "<line class=\"invocation\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{base}\" stroke=\"#555\" stroke-dasharray=\"4 3\"></line><text x=\"{tx:.1}\" y=\"{ty:.1}\">{}</text>",
            escape(&segment.command),
            tx = x + 4.0,
            // Staggered, so that invocations close together stay readable.
            ty = top - 8.0 + 14.0 * (i % 2) as f64,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A slice of time as people read it: `12 ms` below a second, `1.5 s` above.
fn duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else {
        format!("{secs:.1} s")
    }
}

/// Credits and calls by kind of call, named as people know them.
fn spend_table(counts: &RunCounts) -> String {
    let mut out = String::from(
        "<table id=\"spend\"><thead><tr><th>kind of call</th><th>what for</th><th>calls</th><th>credits</th></tr></thead><tbody>",
    );
    for (kind, spend) in &counts.spend {
        let what = match *kind {
            "mass_update" | "update_records" => "writes",
            "bulk_write" => "Bulk Write jobs (writes)",
            "bulk_upload" => "Bulk Write file uploads",
            "bulk_status" => "Bulk Write status polls",
            "bulk_result" => "Bulk Write result files",
            "upsert_records" => "creations (--create-missing)",
            "delete_records" => "deletions (undo of creations)",
            "get_records" => "snapshot reads",
            "coql" => "lookups (--match-by)",
            "metadata" => "field and org metadata",
            _ => "other",
        };
        let _ = write!(
            out,
            "<tr><td>{kind}</td><td>{what}</td><td class=\"n\" id=\"calls-{kind}\">{}</td><td class=\"n\" id=\"credits-{kind}\">{}</td></tr>",
            count(spend.calls),
            count(spend.credits)
        );
    }
    let _ = write!(
        out,
        "<tr><th>all</th><td></td><td class=\"n\" id=\"calls-all\">{}</td><td class=\"n\" id=\"credits\">{}</td></tr></tbody></table>",
        count(counts.spend.values().map(|s| s.calls).sum()),
        count(counts.credits)
    );
    out
}

/// The commands `status` offers, in a box.
fn next_box(next: &NextSteps) -> String {
    let mut out = String::from("<div class=\"next\" id=\"next\"><h2>Next</h2>");
    if next.commands.is_empty() && next.undo.is_none() {
        out.push_str("<p>Nothing left to do: every row has its final outcome.</p>");
    }
    for command in &next.commands {
        let _ = write!(out, "<code class=\"next-step\">{}</code>", escape(command));
    }
    if let Some(undo) = &next.undo {
        let _ = write!(
            out,
            "<p>To take the run back (it kept the values it overwrote):</p><code class=\"next-step\">{}</code>",
            escape(undo)
        );
    }
    out.push_str("</div>");
    out
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
    // The numbers `status --json` gives, each in a cell with an id; beside them what to do
    // next and what the run cost.
    out.push_str("<div class=\"row\"><div><h2>Summary</h2><table><tbody>");
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
    cell("calls", "write calls made", count(counts.calls));
    cell("min-calls", "theoretical minimum", count(counts.min_calls));
    cell("retries", "retries", count(counts.retries));
    if counts.calls_unlogged_at_most > 0 {
        cell(
            "calls-unlogged",
            "calls sent by interrupted processes, not logged (at most)",
            count(counts.calls_unlogged_at_most),
        );
    }
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
    out.push_str("</tbody></table></div><div>");
    out.push_str(&next_box(&report.next));
    out.push_str("<h2>API credits and calls by kind</h2>");
    out.push_str(&spend_table(counts));
    out.push_str("</div></div>");

    out.push_str("<div class=\"row\"><div><h2>Rows by outcome</h2>");
    let bars: Vec<(String, u64, &str)> = OUTCOMES
        .iter()
        .map(|&o| (o.as_str().to_string(), counts.rows(o), colour(o)))
        .collect();
    out.push_str(&hbars("Rows by outcome", &bars));

    out.push_str("</div><div><h2>Record updates by code</h2>");
    // Coloured by the outcome their items ended in: RECORD_LOCKED is retryable (or failed,
    // once its attempts ran out), a code of an unsent chunk pending.
    let mut codes: Vec<(String, u64, &str)> = Vec::new();
    let several = |code: &str| {
        counts
            .items_by_state_and_code
            .keys()
            .filter(|(_, c)| c == code)
            .count()
            > 1
    };
    for ((state, code), n) in &counts.items_by_state_and_code {
        let outcome = RowOutcome::parse(state).unwrap_or(RowOutcome::Pending);
        let label = if several(code) {
            format!("{code} ({state})")
        } else {
            code.clone()
        };
        codes.push((label, *n, colour(outcome)));
    }
    if run.invalid_rows > 0 {
        codes.push((
            "INVALID_ROW (never sent)".into(),
            run.invalid_rows as u64,
            colour(RowOutcome::Invalid),
        ));
    }
    codes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if codes.is_empty() {
        out.push_str("<p class=\"muted\">Nothing sent yet.</p>");
    } else {
        out.push_str(&hbars("Record updates by code", &codes));
        let shown: Vec<RowOutcome> = OUTCOMES
            .iter()
            .copied()
            .filter(|&o| codes.iter().any(|c| c.2 == colour(o)))
            .collect();
        out.push_str(&legend(&shown));
    }
    out.push_str("</div></div>");

    let _ = write!(
        out,
        "<h2>Calls and latency over time</h2><p class=\"muted\">Bars: write calls started in each slice of sending time; line: their mean latency. Every invocation that sent the run ({}) is on the axis, side by side, without the time between them.</p>",
        count(report.segments.len() as u64)
    );
    out.push_str(&time_chart(
        &report.timeline,
        report.bucket_secs,
        &report.segments,
    ));

    out.push_str("<h2>Changes per field</h2><p class=\"muted\">Field values the file asked for, by how their row ended: pending values are not sent yet, not failed.</p>");
    out.push_str(&legend(&OUTCOMES));
    let field_bars: Vec<(String, [u64; OUTCOMES.len()])> = report
        .fields
        .iter()
        .map(|f| (f.field.clone(), f.by_outcome))
        .collect();
    out.push_str(&stacked_bars("Changes per field", &field_bars));

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
        // A run keyed by --match-by shows the key and the record it found apart.
        let key = run.settings["match_by"].as_str();
        out.push_str("</select><table id=\"failed\" class=\"wide\"><thead><tr><th>line</th>");
        match key {
            Some(field) => {
                let _ = write!(out, "<th>{}</th><th>record id</th>", escape(field));
            }
            None => out.push_str("<th>record id</th>"),
        }
        out.push_str("<th>outcome</th><th>code</th><th>message</th></tr></thead><tbody>");
        for row in &report.failed {
            let _ = write!(
                out,
                "<tr data-outcome=\"{o}\"><td class=\"n\">{}</td><td>{}</td>",
                row.line,
                escape(&row.record_id),
                o = row.outcome.as_str()
            );
            if key.is_some() {
                let _ = write!(
                    out,
                    "<td>{}</td>",
                    row.record.map(|id| id.to_string()).unwrap_or_default()
                );
            }
            let _ = write!(
                out,
                "<td><span style=\"color:{c}\">●</span> {o}</td><td>{}</td><td>{}</td></tr>",
                escape(&row.code),
                escape(&row.message),
                c = colour(row.outcome),
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
    fn every_invocation_is_on_the_axis_without_the_time_between() {
        // A run of 10 s, then a retry an hour later that took 2 s, then a resume killed
        // after its one call (no end recorded).
        let sends = vec![
            ("run".to_string(), 1000.0, Some(1010.0)),
            ("retry".to_string(), 4600.0, Some(4602.0)),
            ("resume".to_string(), 9000.0, None),
        ];
        let calls = [
            (1000.5, 100, true),
            (1009.0, 200, true),
            (4601.0, 50, true),
            (9000.5, 1500, false),
        ];
        let (placed, segments) = place_calls(&sends, &calls);
        let offsets: Vec<f64> = placed.iter().map(|c| c.0).collect();
        assert_eq!(offsets, [0.5, 9.0, 11.0, 12.5]);
        assert_eq!(
            segments,
            [
                Segment {
                    command: "run".into(),
                    start: 0.0
                },
                Segment {
                    command: "retry".into(),
                    start: 10.0
                },
                Segment {
                    command: "resume".into(),
                    start: 12.0
                },
            ]
        );
        // Calls of a run sent before invocations were recorded start the axis.
        let (placed, segments) = place_calls(&[], &[(50.0, 10, true), (53.0, 10, true)]);
        assert_eq!(placed.iter().map(|c| c.0).collect::<Vec<_>>(), [0.0, 3.0]);
        assert_eq!(segments.len(), 1);
    }

    #[test]
    fn field_changes_count_each_outcome_apart() {
        let mut field = FieldChanges::default();
        for o in [RowOutcome::Pending, RowOutcome::Pending, RowOutcome::Failed] {
            field.add(o);
        }
        assert_eq!(field.by_outcome[outcome_index(RowOutcome::Pending)], 2);
        assert_eq!(field.by_outcome[outcome_index(RowOutcome::Failed)], 1);
        let svg = stacked_bars("Changes", &[("City".into(), field.by_outcome)]);
        assert!(svg.contains(&format!(
            "fill=\"{}\"><title>2 pending",
            colour(RowOutcome::Pending)
        )));
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
