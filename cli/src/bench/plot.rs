//! `--plot FILE.svg`: hand-written SVG, no plotting crate. One chart of throughput against
//! lease count (log-log, one line per target) and, for expiry, one of the lateness histogram
//! (share of leases per lateness bin, lessor and the reference side by side).

use std::fmt::Write as _;

use super::stats::Hist;

/// Width of a chart.
const W: f64 = 760.0;
/// Height of a chart.
const H: f64 = 420.0;
/// Plot area margins: left, right, top, bottom.
const MARGIN: (f64, f64, f64, f64) = (80.0, 20.0, 40.0, 60.0);

/// One line of the throughput chart.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend text.
    pub(crate) label: &'static str,
    /// Stroke colour.
    pub(crate) color: &'static str,
    /// (lease count, ops/s) points.
    pub(crate) points: Vec<(f64, f64)>,
}

/// One bar group of the lateness histogram.
#[derive(Debug)]
pub(crate) struct Bars<'a> {
    /// Legend text.
    pub(crate) label: &'static str,
    /// Fill colour.
    pub(crate) color: &'static str,
    /// The lateness values (ns).
    pub(crate) hist: &'a Hist,
}

/// The series colours: lessor, the reference lessor, the floor.
pub(crate) const COLORS: [&str; 3] = ["#1f77b4", "#d62728", "#7f7f7f"];

/// Lateness bin edges in ms (the last bin is open).
const BINS_MS: [u64; 14] = [
    0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000,
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A bin edge: `500ms`, `2s`.
fn ms_label(ms: u64) -> String {
    if ms >= 1000 && ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Decades covering `lo..=hi` (both > 0).
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let (a, b) = (lo.log10().floor(), hi.log10().ceil());
    if a == b {
        (a - 1.0, b + 1.0)
    } else {
        (a, b)
    }
}

/// A lease count as a label: 1e3 -> "1k".
fn count_label(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{}G", v / 1e9),
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

/// The throughput chart, drawn at vertical offset `y0`.
pub(crate) fn throughput(title: &str, series: &[Series], y0: f64) -> String {
    let (ml, mr, mt, mb) = MARGIN;
    let (pw, ph) = (W - ml - mr, H - mt - mb);
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .collect();
    let mut g = String::new();
    let _ = writeln!(g, r#"<g transform="translate(0,{y0})">"#);
    let _ = writeln!(
        g,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    if all.is_empty() {
        let _ = writeln!(g, r#"<text x="{ml}" y="{}">no data</text></g>"#, mt + 20.0);
        return g;
    }
    let fold = |f: fn(f64, f64) -> f64, init, pick: fn(&(f64, f64)) -> f64| {
        all.iter().map(pick).fold(init, f)
    };
    let (x0, x1) = decades(
        fold(f64::min, f64::MAX, |p| p.0),
        fold(f64::max, 0.0, |p| p.0),
    );
    let (v0, v1) = decades(
        fold(f64::min, f64::MAX, |p| p.1),
        fold(f64::max, 0.0, |p| p.1),
    );
    let sx = |x: f64| ml + (x.log10() - x0) / (x1 - x0) * pw;
    let sy = |y: f64| mt + ph - (y.log10() - v0) / (v1 - v0) * ph;
    for d in (x0 as i32)..=(x1 as i32) {
        let x = sx(10f64.powi(d));
        let _ = writeln!(
            g,
            r##"<line x1="{x:.1}" y1="{mt}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"##,
            mt + ph,
            mt + ph + 18.0,
            count_label(10f64.powi(d))
        );
    }
    for d in (v0 as i32)..=(v1 as i32) {
        let y = sy(10f64.powi(d));
        let _ = writeln!(
            g,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}/s</text>"##,
            ml + pw,
            ml - 6.0,
            y + 4.0,
            count_label(10f64.powi(d))
        );
    }
    let _ = writeln!(
        g,
        r#"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="black"/><text x="{}" y="{}" font-size="13" text-anchor="middle">leases</text>"#,
        ml + pw / 2.0,
        H - 18.0
    );
    let widest = series.iter().map(|s| s.label.len()).max().unwrap_or(0) as f64;
    let legend = format!(
        r##"<rect x="{}" y="{}" width="{:.1}" height="{}" fill="white" fill-opacity="0.85" stroke="#bbb"/>"##,
        ml + 4.0,
        mt + 4.0,
        36.0 + 7.0 * widest,
        18.0 * series.len() as f64 + 6.0
    );
    let mut items = String::new();
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| *x > 0.0 && *y > 0.0)
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = writeln!(
            g,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            pts.join(" "),
            s.color
        );
        for p in &pts {
            let (x, y) = p.split_once(',').expect("x,y");
            let _ = writeln!(
                g,
                r#"<circle cx="{x}" cy="{y}" r="3.5" fill="{}"/>"#,
                s.color
            );
        }
        let ly = mt + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            items,
            r#"<rect x="{}" y="{}" width="14" height="4" fill="{}"/><text x="{}" y="{}" font-size="12">{}</text>"#,
            ml + 10.0,
            ly - 6.0,
            s.color,
            ml + 30.0,
            ly,
            esc(s.label)
        );
    }
    g.push_str(&legend);
    g.push_str(&items);
    g.push_str("</g>\n");
    g
}

/// The lateness histogram, drawn at vertical offset `y0`.
pub(crate) fn lateness(title: &str, groups: &[Bars<'_>], y0: f64) -> String {
    let (ml, mr, mt, mb) = MARGIN;
    let (pw, ph) = (W - ml - mr, H - mt - mb);
    let mut g = String::new();
    let _ = writeln!(g, r#"<g transform="translate(0,{y0})">"#);
    let _ = writeln!(
        g,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    let bins = BINS_MS.len();
    let slot = pw / bins as f64;
    let bar = slot * 0.8 / groups.len().max(1) as f64;
    for pct in [0, 25, 50, 75, 100] {
        let y = mt + ph - ph * f64::from(pct) / 100.0;
        let _ = writeln!(
            g,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{pct}%</text>"##,
            ml + pw,
            ml - 6.0,
            y + 4.0
        );
    }
    for (b, lo) in BINS_MS.iter().enumerate() {
        let label = match BINS_MS.get(b + 1) {
            Some(hi) => format!("<{}", ms_label(*hi)),
            None => format!(">={}", ms_label(*lo)),
        };
        let x = ml + slot * (b as f64 + 0.5);
        let _ = writeln!(
            g,
            r#"<text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            mt + ph + 16.0,
            esc(&label)
        );
    }
    for (i, grp) in groups.iter().enumerate() {
        let total = grp.hist.len().max(1) as f64;
        for (b, lo) in BINS_MS.iter().enumerate() {
            let hi = BINS_MS.get(b + 1).map_or(u64::MAX, |h| h * 1_000_000);
            let share = grp.hist.count_in(lo * 1_000_000, hi) as f64 / total;
            let h = ph * share;
            let x = ml + slot * b as f64 + slot * 0.1 + bar * i as f64;
            let _ = writeln!(
                g,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}" fill="{}"/>"#,
                mt + ph - h,
                grp.color
            );
        }
        let ly = mt + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            g,
            r#"<rect x="{:.1}" y="{:.1}" width="14" height="10" fill="{}"/><text x="{:.1}" y="{ly:.1}" font-size="12">{}</text>"#,
            ml + pw - 200.0,
            ly - 9.0,
            grp.color,
            ml + pw - 180.0,
            esc(grp.label)
        );
    }
    let _ = writeln!(
        g,
        r#"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="black"/><text x="{}" y="{}" font-size="13" text-anchor="middle">delivery time - deadline (share of leases; undelivered: the wait)</text>"#,
        ml + pw / 2.0,
        H - 18.0
    );
    g.push_str("</g>\n");
    g
}

/// A whole SVG document of charts stacked vertically.
pub(crate) fn document(charts: &[String]) -> String {
    let height = H * charts.len().max(1) as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif">"#
    );
    s.push('\n');
    let _ = writeln!(s, r#"<rect width="{W}" height="{height}" fill="white"/>"#);
    for c in charts {
        s.push_str(c);
    }
    s.push_str("</svg>\n");
    s
}

/// The vertical offset of chart `i`.
pub(crate) fn offset(i: usize) -> f64 {
    H * i as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_document_with_both_charts() {
        let series = [Series {
            label: "lessor",
            color: COLORS[0],
            points: vec![(1e3, 2e7), (1e6, 1e7)],
        }];
        let mut h = Hist::new();
        h.record(3_000_000);
        h.record(700_000_000);
        let groups = [Bars {
            label: "lessor",
            color: COLORS[0],
            hist: &h,
        }];
        let svg = document(&[
            throughput("renew <1>", &series, offset(0)),
            lateness("expiry", &groups, offset(1)),
        ]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("renew &lt;1&gt;"));
        assert!(svg.contains("<polyline"));
        assert_eq!(svg.matches("<g ").count(), 2);
    }

    #[test]
    fn empty_and_single_point_charts_do_not_panic() {
        let s = throughput("t", &[], 0.0);
        assert!(s.contains("no data"));
        let one = [Series {
            label: "x",
            color: COLORS[1],
            points: vec![(1e4, 5e5)],
        }];
        assert!(throughput("t", &one, 0.0).contains("<circle"));
        assert_eq!(decades(1e4, 1e4), (3.0, 5.0));
    }
}
