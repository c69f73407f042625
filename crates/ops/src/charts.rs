//! Inline SVG charts, shared by the monthly report, the public status page
//! and the dashboard: pure functions from plain numbers to an SVG string.
//!
//! Every chart is `role="img"` with an `aria-label` saying what it shows,
//! sized by its `viewBox` (so it takes the width of its container), and
//! self-contained: no script, no font, no external reference. Every piece
//! of text that reaches it (monitor names, titles) passes through
//! [`escape`].
//!
//! Colours: every mark carries a class (a bar's day `<g>` its level,
//! `bw-ok`, `bw-warn`, `bw-degraded`, `bw-bad` or `bw-none`, with its parts
//! `u` (up) and `l` (downtime); lines `bw-s0`, `bw-s1`, `bw-ref`) and its
//! colour as a presentation attribute. A stylesheet rule for the class beats the
//! attribute, so a page can theme the charts (dark mode); a file without a
//! stylesheet (the archived HTML report) still shows the fallback colours.
//! Text and axes use `currentColor`, so they follow the page's text colour.
//!
//! ```
//! use bulwark_ops::{uptime_bars, Day};
//! let d = |s: &str| s.parse().unwrap();
//! let svg = uptime_bars(
//!     "api",
//!     &[Day { date: d("2026-01-01"), uptime: Some(1.0) }, Day { date: d("2026-01-02"), uptime: Some(0.0) }],
//! );
//! assert!(svg.contains("bw-bad") && svg.starts_with("<svg"));
//! ```

use std::fmt::Write;

use chrono::NaiveDate;

/// HTML/XML-escapes text for element content and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// How good a share of successful probes is, for colouring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// At least 99.9%.
    Ok,
    /// At least 99%.
    Warn,
    /// At least 95%.
    Degraded,
    /// Below 95%.
    Bad,
    /// Nothing measured.
    NoData,
}

impl Level {
    /// The level of `uptime` (a share between 0 and 1; None without data).
    pub fn of(uptime: Option<f64>) -> Level {
        match uptime {
            None => Level::NoData,
            Some(u) if u.is_nan() => Level::NoData,
            Some(u) if u >= 0.999 => Level::Ok,
            Some(u) if u >= 0.99 => Level::Warn,
            Some(u) if u >= 0.95 => Level::Degraded,
            Some(_) => Level::Bad,
        }
    }

    /// The CSS class of marks at this level.
    pub fn class(self) -> &'static str {
        match self {
            Level::Ok => "bw-ok",
            Level::Warn => "bw-warn",
            Level::Degraded => "bw-degraded",
            Level::Bad => "bw-bad",
            Level::NoData => "bw-none",
        }
    }

    /// The colour used when no stylesheet styles [`Level::class`].
    pub fn fallback(self) -> &'static str {
        match self {
            Level::Ok => "#2da44e",
            Level::Warn => "#d4a72c",
            Level::Degraded => "#e16f24",
            Level::Bad => "#cf222e",
            Level::NoData => "#8c959f",
        }
    }
}

/// One day of one monitor's uptime bars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Day {
    pub date: NaiveDate,
    /// Share of good probes (0 to 1); None when nothing was measured.
    pub uptime: Option<f64>,
}

/// Width of a day in the bars' coordinate system (the bar plus its gap).
const DAY_W: f64 = 10.0;
/// Height of the bars' coordinate system and their default height in pixels.
pub const BARS_H: u32 = 34;
/// Downtime at which a day's bar is entirely in its level colour: the
/// scale stretches the last 10%, where availability differences matter.
const FULL_LOSS: f64 = 0.10;
/// The least part of the bar a day below 99.9% colours, so that even a
/// 99.5% day stands out from its neighbours.
const MIN_LOSS_SHARE: f64 = 0.25;

/// The share of a day's bar drawn in its level colour (from the top), the
/// rest being the green "up" part: 0 for a day at 99.9% or more, at least
/// [`MIN_LOSS_SHARE`] below that, and all of it at 90% or less, so a day at
/// 0% is a full-height red bar.
pub fn loss_share(uptime: Option<f64>) -> f64 {
    match (Level::of(uptime), uptime) {
        (Level::Ok, _) => 0.0,
        (Level::NoData, _) | (_, None) => 1.0,
        (_, Some(u)) => ((1.0 - u) / FULL_LOSS).clamp(MIN_LOSS_SHARE, 1.0),
    }
}

fn pct_label(uptime: Option<f64>) -> String {
    match uptime {
        Some(u) if !u.is_nan() => format!("{:.3}% up", u * 100.0),
        _ => "no data".to_string(),
    }
}

/// Daily uptime bars, oldest day first (left).
///
/// Each day is a full-height column: the part that is up in green, the
/// downtime on top in its level's colour, stretched so that a day at 90% or
/// less is all red and any day below 99.9% shows at least a quarter of its
/// column coloured. Days without data are grey. Each column has a
/// `<title>` tooltip with its date and figure. The SVG is `BARS_H` pixels
/// high and as wide as its container.
pub fn uptime_bars(title: &str, days: &[Day]) -> String {
    let w = DAY_W * days.len().max(1) as f64;
    let h = f64::from(BARS_H);
    let below = days
        .iter()
        .filter(|d| !matches!(Level::of(d.uptime), Level::Ok | Level::NoData))
        .count();
    let worst = days
        .iter()
        .filter_map(|d| d.uptime.filter(|u| !u.is_nan()))
        .fold(None, |acc: Option<f64>, u| {
            Some(acc.map_or(u, |a| a.min(u)))
        });
    let summary = match worst {
        None => format!("{}: no data in {} days", title, days.len()),
        Some(worst) => format!(
            "{}: {} days, {} below 99.9%, worst day {:.3}%",
            title,
            days.len(),
            below,
            worst * 100.0
        ),
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"bw-chart bw-bars\" role=\"img\" \
         aria-label=\"{label}\" viewBox=\"0 0 {w} {h}\" width=\"100%\" height=\"{h}\" \
         preserveAspectRatio=\"none\"><title>{label}</title>",
        label = escape(&summary),
    );
    for (i, d) in days.iter().enumerate() {
        let level = Level::of(d.uptime);
        let x = i as f64 * DAY_W + 1.0;
        // `l`: the downtime part, in the day's level colour (its class on the `<g>`);
        // `u`: the part that is up, green.
        let bw = DAY_W - 2.0;
        let loss = (loss_share(d.uptime) * h * 10.0).round() / 10.0;
        // Compact: at 1,000 monitors a status page draws 90,000 of these.
        let _ = write!(
            svg,
            "<g class=\"{}\"><title>{} {}</title>",
            level.class(),
            d.date,
            escape(&pct_label(d.uptime))
        );
        if loss < h {
            let up = ((h - loss) * 10.0).round() / 10.0;
            let y = if loss > 0.0 {
                format!(" y=\"{loss}\"")
            } else {
                String::new()
            };
            let _ = write!(
                svg,
                "<rect class=\"u\" x=\"{x}\"{y} width=\"{bw}\" height=\"{up}\" fill=\"{}\"/>",
                Level::Ok.fallback(),
            );
        }
        if loss > 0.0 {
            let _ = write!(
                svg,
                "<rect class=\"l\" x=\"{x}\" width=\"{bw}\" height=\"{loss}\" fill=\"{}\"/>",
                level.fallback()
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

/// One line of a [`line_chart`]: (Unix ms, value) points, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub name: &'a str,
    pub points: &'a [(i64, f64)],
}

/// A horizontal line across a [`line_chart`] (a target, or zero).
#[derive(Debug, Clone, Copy)]
pub struct Reference<'a> {
    pub value: f64,
    pub label: &'a str,
}

/// What a [`line_chart`] draws.
#[derive(Debug, Clone, Copy)]
pub struct LineChart<'a> {
    pub title: &'a str,
    /// Drawn in order with classes `bw-s0`, `bw-s1`, … (fallback colours
    /// blue, orange, purple, teal).
    pub series: &'a [Series<'a>],
    pub reference: Option<Reference<'a>>,
    /// Whether the value axis starts at zero (latency) or at the data.
    pub from_zero: bool,
    /// How axis labels and the summary print a value.
    pub format: fn(f64) -> String,
}

const SERIES_COLOURS: [&str; 4] = ["#0969da", "#bc4c00", "#8250df", "#1a7f37"];
const LINE_W: f64 = 600.0;
const LINE_H: f64 = 200.0;
/// The plot area inside the viewBox: left, top, right, bottom.
const PLOT: (f64, f64, f64, f64) = (56.0, 22.0, 592.0, 176.0);

/// `ms` is a point on the time axis, which is plotted in Unix milliseconds.
fn time_label(ms: i64, span_ms: i64) -> String {
    let t = crate::time::Timestamp::from_millis(ms).to_datetime();
    if span_ms >= 2 * 86_400_000 {
        t.format("%Y-%m-%d").to_string()
    } else {
        t.format("%m-%d %H:%MZ").to_string()
    }
}

/// A series to draw: its index (for its class), itself, its finite points.
type Drawn<'s, 'a> = (usize, &'s Series<'a>, Vec<(i64, f64)>);

/// A line chart of values over time, with an optional reference line.
/// Scales to its container's width (height follows the 3:1 aspect ratio);
/// series without points are left out and a chart without any says "no
/// data". Values that are not finite are skipped.
pub fn line_chart(c: &LineChart<'_>) -> String {
    let finite = |s: &Series<'_>| -> Vec<(i64, f64)> {
        s.points
            .iter()
            .copied()
            .filter(|(_, v)| v.is_finite())
            .collect()
    };
    let series: Vec<Drawn<'_, '_>> = c
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s, finite(s)))
        .filter(|(_, _, p)| !p.is_empty())
        .collect();
    let all = series.iter().flat_map(|(_, _, p)| p.iter());
    let (t0, t1, mut lo, mut hi) = all.fold(
        (i64::MAX, i64::MIN, f64::INFINITY, f64::NEG_INFINITY),
        |(t0, t1, lo, hi), &(t, v)| (t0.min(t), t1.max(t), lo.min(v), hi.max(v)),
    );
    let summary = if series.is_empty() {
        format!("{}: no data", c.title)
    } else {
        let latest: Vec<String> = series
            .iter()
            .filter_map(|(_, s, p)| {
                p.last()
                    .map(|(_, v)| format!("{} {}", s.name, (c.format)(*v)))
            })
            .collect();
        format!(
            "{}: {} to {}, latest {}",
            c.title,
            time_label(t0, t1 - t0),
            time_label(t1, t1 - t0),
            latest.join(", ")
        )
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"bw-chart bw-line\" role=\"img\" \
         aria-label=\"{label}\" viewBox=\"0 0 {LINE_W} {LINE_H}\" width=\"100%\" \
         font-family=\"system-ui,sans-serif\" font-size=\"12\" fill=\"currentColor\">\
         <title>{label}</title>",
        label = escape(&summary)
    );
    if series.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" opacity=\"0.7\">no data</text></svg>",
            LINE_W / 2.0,
            LINE_H / 2.0
        );
        return svg;
    }
    if c.from_zero {
        lo = lo.min(0.0);
    }
    if let Some(r) = c.reference.filter(|r| r.value.is_finite()) {
        lo = lo.min(r.value);
        hi = hi.max(r.value);
    }
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        hi = lo + if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
    }
    let (left, top, right, bottom) = PLOT;
    let span = (t1 - t0).max(1) as f64;
    let x = |t: i64| left + (t - t0) as f64 / span * (right - left);
    let y = |v: f64| bottom - (v - lo) / (hi - lo) * (bottom - top);
    // Axes and three value gridlines with their labels.
    for k in 0..=2 {
        let v = lo + (hi - lo) * f64::from(k) / 2.0;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{right}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"currentColor\" \
             stroke-opacity=\"0.15\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 4.0,
            y(v) + 4.0,
            escape(&(c.format)(v)),
            yy = y(v),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{}\">{}</text><text x=\"{right}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        LINE_H - 6.0,
        escape(&time_label(t0, t1 - t0)),
        LINE_H - 6.0,
        escape(&time_label(t1, t1 - t0)),
    );
    if let Some(r) = c.reference.filter(|r| r.value.is_finite()) {
        let _ = write!(
            svg,
            "<line class=\"bw-ref\" x1=\"{left}\" x2=\"{right}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" \
             stroke=\"#cf222e\" stroke-dasharray=\"6 4\" stroke-width=\"1.5\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" opacity=\"0.8\">{}</text>",
            right - 2.0,
            y(r.value) - 4.0,
            escape(r.label),
            yy = y(r.value),
        );
    }
    // Legend, top left, then the lines.
    let mut lx = left;
    for (i, s, _) in &series {
        let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
        let _ = write!(
            svg,
            "<rect class=\"bw-s{i}\" fill=\"{colour}\" x=\"{lx}\" y=\"6\" width=\"10\" height=\"10\"/>\
             <text x=\"{}\" y=\"15\">{}</text>",
            lx + 14.0,
            escape(s.name)
        );
        lx += 24.0 + 7.0 * s.name.chars().count() as f64;
    }
    for (i, s, points) in &series {
        let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
        if let [(t, v)] = points.as_slice() {
            let _ = write!(
                svg,
                "<circle class=\"bw-s{i}\" fill=\"{colour}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"><title>{}</title></circle>",
                x(*t),
                y(*v),
                escape(&format!("{} {}", s.name, (c.format)(*v)))
            );
            continue;
        }
        let mut d = String::with_capacity(points.len() * 14);
        for (k, (t, v)) in points.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if k == 0 { "M" } else { " L" },
                x(*t),
                y(*v)
            );
        }
        let _ = write!(
            svg,
            "<path class=\"bw-s{i}\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" \
             stroke-linejoin=\"round\" vector-effect=\"non-scaling-stroke\"/>"
        );
    }
    svg.push_str("</svg>");
    svg
}

fn millis(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.0} ms")
    }
}

fn percent(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// Latency p50 and p95 over time, in milliseconds, from zero.
pub fn latency_chart(title: &str, p50: &[(i64, f64)], p95: &[(i64, f64)]) -> String {
    line_chart(&LineChart {
        title,
        series: &[
            Series {
                name: "p50",
                points: p50,
            },
            Series {
                name: "p95",
                points: p95,
            },
        ],
        reference: None,
        from_zero: true,
        format: millis,
    })
}

/// An error budget's burn-down: the share of budget left over time (1 =
/// untouched, 0 = exhausted, below 0 = overspent), with a dashed line at
/// `target` (usually 0, "exhausted") when given.
pub fn burn_down(title: &str, remaining: &[(i64, f64)], target: Option<f64>) -> String {
    line_chart(&LineChart {
        title,
        series: &[Series {
            name: "budget left",
            points: remaining,
        }],
        reference: target.map(|value| Reference {
            value,
            label: if value == 0.0 { "exhausted" } else { "target" },
        }),
        from_zero: true,
        format: percent,
    })
}

/// Width of `text` in Verdana 11px, roughly, as shields.io badges use it.
fn badge_text_width(text: &str) -> u32 {
    text.chars()
        .map(|c| match c {
            'i' | 'l' | '.' | ',' | ':' | '\'' | '|' | ' ' => 4,
            'm' | 'w' | 'M' | 'W' | '%' => 10,
            c if c.is_ascii_uppercase() || c.is_ascii_digit() => 8,
            _ => 7,
        })
        .sum()
}

/// A shields.io-style badge: `label` on grey, `message` on the level's
/// colour. Fixed colours (a badge is shown on other sites, outside any
/// stylesheet), 20 pixels high.
pub fn badge(label: &str, message: &str, level: Level) -> String {
    let lw = badge_text_width(label) + 12;
    let mw = badge_text_width(message) + 12;
    let w = lw + mw;
    let text = escape(&format!("{label}: {message}"));
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"20\" viewBox=\"0 0 {w} 20\" \
         role=\"img\" aria-label=\"{text}\"><title>{text}</title>\
         <clipPath id=\"r\"><rect width=\"{w}\" height=\"20\" rx=\"3\"/></clipPath>\
         <g clip-path=\"url(#r)\"><rect width=\"{lw}\" height=\"20\" fill=\"#555\"/>\
         <rect x=\"{lw}\" width=\"{mw}\" height=\"20\" fill=\"{colour}\"/></g>\
         <g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" \
         font-size=\"11\"><text x=\"{lx}\" y=\"14\">{label}</text><text x=\"{mx}\" y=\"14\">{message}</text></g></svg>",
        colour = level.fallback(),
        lx = f64::from(lw) / 2.0,
        mx = f64::from(lw) + f64::from(mw) / 2.0,
        label = escape(label),
        message = escape(message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, uptime: Option<f64>) -> Day {
        Day {
            date: date.parse().unwrap(),
            uptime,
        }
    }

    /// The `<g>` of the `n`th day.
    fn day_group(svg: &str, n: usize) -> &str {
        let start = svg.match_indices("<g ").nth(n).expect("day group").0;
        let end = start + svg[start..].find("</g>").unwrap();
        &svg[start..end]
    }

    /// Height of the rect with class `class` in `group`, if any.
    fn rect_height(group: &str, class: &str) -> Option<f64> {
        let at = group.find(&format!("<rect class=\"{class}\""))?;
        let rest = &group[at..];
        let h = rest.find("height=\"")? + 8;
        rest[h..].split('"').next()?.parse().ok()
    }

    #[test]
    fn levels_table() {
        let check = |u: Option<f64>, level: Level| assert_eq!(Level::of(u), level, "{u:?}");
        check(Some(1.0), Level::Ok);
        check(Some(0.999), Level::Ok);
        check(Some(0.9989), Level::Warn);
        check(Some(0.99), Level::Warn);
        check(Some(0.98), Level::Degraded);
        check(Some(0.95), Level::Degraded);
        check(Some(0.949), Level::Bad);
        check(Some(0.0), Level::Bad);
        check(None, Level::NoData);
        check(Some(f64::NAN), Level::NoData);
    }

    #[test]
    fn a_day_at_zero_is_a_full_height_red_bar() {
        let svg = uptime_bars(
            "api",
            &[day("2026-01-01", Some(1.0)), day("2026-01-02", Some(0.0))],
        );
        let bad = day_group(&svg, 1);
        assert!(bad.contains("class=\"bw-bad\""), "{bad}");
        assert!(
            bad.contains("fill=\"#cf222e\""),
            "red without a stylesheet: {bad}"
        );
        assert_eq!(rect_height(bad, "l"), Some(f64::from(BARS_H)), "{bad}");
        assert_eq!(rect_height(bad, "u"), None, "no green in a 0% day: {bad}");
        assert!(bad.contains("<title>2026-01-02 0.000% up</title>"), "{bad}");
        let good = day_group(&svg, 0);
        assert!(good.contains("class=\"bw-ok\""), "{good}");
        assert_eq!(rect_height(good, "u"), Some(f64::from(BARS_H)));
        assert_eq!(rect_height(good, "l"), None);
        assert!(
            good.contains("<title>2026-01-01 100.000% up</title>"),
            "{good}"
        );
    }

    #[test]
    fn worse_days_colour_more_of_their_bar() {
        let h = f64::from(BARS_H);
        let check = |u: f64, class: &str, loss: f64| {
            let svg = uptime_bars("m", &[day("2026-03-01", Some(u))]);
            let g = day_group(&svg, 0);
            assert!(g.contains(&format!("class=\"{class}\"")), "{u}: {g}");
            let got = rect_height(g, if class == "bw-ok" { "u" } else { "l" }).unwrap_or(0.0);
            assert!(
                (got - (loss * h * 10.0).round() / 10.0).abs() < 0.05,
                "{u}: {got} in {g}"
            );
        };
        // At 99.9% or more the whole column is the green "up" part.
        check(0.9995, "bw-ok", 1.0);
        check(0.995, "bw-warn", MIN_LOSS_SHARE);
        check(0.97, "bw-degraded", 0.3);
        check(0.94, "bw-bad", 0.6);
        check(0.5, "bw-bad", 1.0);
        // Monotonic: a worse day never colours less.
        let mut last = 0.0;
        for k in 0..=1000 {
            let u = f64::from(1000 - k) / 1000.0;
            let share = loss_share(Some(u));
            assert!(share >= last, "{u}");
            last = share;
        }
    }

    #[test]
    fn days_without_data_are_grey_and_say_so() {
        let svg = uptime_bars("m", &[day("2026-03-01", None)]);
        let g = day_group(&svg, 0);
        assert!(g.contains("class=\"bw-none\""), "{g}");
        assert!(g.contains("no data"), "{g}");
        assert!(svg.contains("aria-label=\"m: no data in 1 days\""), "{svg}");
    }

    #[test]
    fn charts_are_labelled_scalable_images() {
        let bars = uptime_bars("api", &[day("2026-01-01", Some(0.98))]);
        let lat = latency_chart("api latency", &[(0, 10.0), (60_000, 20.0)], &[(0, 30.0)]);
        let burn = burn_down("budget", &[(0, 1.0), (86_400_000, -0.2)], Some(0.0));
        for svg in [&bars, &lat, &burn] {
            assert!(
                svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
                "{svg}"
            );
            assert!(svg.contains("role=\"img\""), "{svg}");
            assert!(svg.contains("aria-label=\""), "{svg}");
            assert!(svg.contains("viewBox=\"0 0 "), "{svg}");
            assert!(svg.contains("width=\"100%\""), "{svg}");
            assert!(svg.ends_with("</svg>"), "{svg}");
            assert!(!svg.contains("href"), "nothing external: {svg}");
        }
        assert!(bars.contains("worst day 98.000%"), "{bars}");
        assert!(lat.contains("latest p50 20 ms, p95 30 ms"), "{lat}");
        assert!(lat.contains("class=\"bw-s0\"") && lat.contains("class=\"bw-s1\""));
        // The single p95 point is a dot, not an empty path.
        assert!(lat.contains("<circle class=\"bw-s1\""), "{lat}");
        assert!(
            burn.contains("class=\"bw-ref\"") && burn.contains(">exhausted<"),
            "{burn}"
        );
        assert!(burn.contains("latest budget left -20%"), "{burn}");
    }

    #[test]
    fn text_is_escaped_everywhere() {
        let hostile = "<script>alert('x')</script>\"&";
        let bars = uptime_bars(hostile, &[day("2026-01-01", Some(1.0))]);
        let lat = latency_chart(hostile, &[(0, 1.0), (1, 2.0)], &[]);
        let line = line_chart(&LineChart {
            title: "t",
            series: &[Series {
                name: hostile,
                points: &[(0, 1.0), (1, 2.0)],
            }],
            reference: Some(Reference {
                value: 1.5,
                label: hostile,
            }),
            from_zero: false,
            format: percent,
        });
        for svg in [bars, lat, line] {
            assert!(!svg.contains("<script"), "{svg}");
            assert!(!svg.contains("'x'"), "{svg}");
            assert!(
                svg.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"),
                "{svg}"
            );
        }
    }

    #[test]
    fn empty_and_degenerate_series() {
        let empty = latency_chart("api", &[], &[]);
        assert!(empty.contains("aria-label=\"api: no data\""), "{empty}");
        assert!(empty.contains(">no data</text>"), "{empty}");
        assert!(!empty.contains("<path"), "{empty}");
        let bars = uptime_bars("api", &[]);
        assert!(bars.contains("viewBox=\"0 0 10 "), "{bars}");
        assert!(!bars.contains("<rect"), "{bars}");
        // Flat and non-finite values draw without NaN coordinates.
        let flat = latency_chart("api", &[(5, 0.0), (5, 0.0), (9, f64::NAN)], &[]);
        assert!(!flat.contains("NaN") && !flat.contains("inf"), "{flat}");
        assert!(flat.contains("<path"), "{flat}");
    }

    #[test]
    fn badges_are_sized_escaped_and_coloured() {
        let b = badge("api<x>", "up 99.95%", Level::Ok);
        assert!(
            b.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{b}"
        );
        assert!(
            b.contains("role=\"img\" aria-label=\"api&lt;x&gt;: up 99.95%\""),
            "{b}"
        );
        assert!(b.contains(">up 99.95%</text>") && !b.contains("<x>"), "{b}");
        assert!(
            b.contains(&format!("fill=\"{}\"", Level::Ok.fallback())),
            "{b}"
        );
        let down = badge("api", "down 97.00%", Level::Bad);
        assert!(
            down.contains(&format!("fill=\"{}\"", Level::Bad.fallback())),
            "{down}"
        );
        // A longer message makes a wider badge.
        let width = |svg: &str| -> u32 {
            let at = svg.find("width=\"").unwrap() + 7;
            svg[at..].split('"').next().unwrap().parse().unwrap()
        };
        assert!(
            width(&badge("api", "unknown", Level::NoData)) > width(&badge("api", "up", Level::Ok))
        );
    }
}
