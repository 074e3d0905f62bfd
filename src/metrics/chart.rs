//! PNG charts of a query over a range with its baselines, drawn with a built-in font so no host fonts are needed.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::text::format_value;
use super::MetricsError;
use crate::integrations::prometheus::Sample;

/// Width and height in pixels: readable inline in Discord on a laptop and a phone.
pub const CHART_SIZE: (u32, u32) = (960, 540);

/// The family name the embedded font is registered under.
const FONT: &str = "sans-serif";

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Dash and gap lengths per baseline, so that "a day ago" and "a week ago" differ without colour.
const DASHES: [(i32, i32); 3] = [(10, 5), (3, 4), (14, 4)];

const GREY: RGBColor = RGBColor(110, 110, 110);

/// One series to draw: its values over the range and its baselines, already moved onto the same
/// time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSeries {
    pub label: String,
    pub current: Vec<Sample>,
    /// `(label, samples)` per baseline, e.g. `("1d", …)`.
    pub baselines: Vec<(String, Vec<Sample>)>,
}

/// Everything a chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartInput {
    pub title: String,
    pub unit: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The query step: a longer silence between samples is a gap, not a straight line.
    pub step: Duration,
    pub series: Vec<ChartSeries>,
}

/// plotters' `ab_glyph` backend knows only fonts registered at run time; DejaVu Sans is compiled
/// in, so charts render the same on a bare container as on a desktop.
fn ensure_font() -> Result<(), MetricsError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(MetricsError::Chart(
            "the built-in font could not be loaded".to_string(),
        ))
    }
}

fn chart_error(e: impl std::fmt::Display) -> MetricsError {
    MetricsError::Chart(e.to_string())
}

/// Halfway to white: baselines stay recognisable as their series' but recede behind it.
fn lighten(c: RGBColor) -> RGBColor {
    let mix = |v: u8| ((v as u16 + 255) / 2) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// Splits samples into runs without gaps or non-finite values.
fn segments(samples: &[Sample], step: Duration) -> Vec<Vec<(DateTime<Utc>, f64)>> {
    let max_gap = (step.as_secs_f64() * 1.5).max(1.0);
    let mut out: Vec<Vec<(DateTime<Utc>, f64)>> = Vec::new();
    let mut last: Option<DateTime<Utc>> = None;
    for s in samples {
        if !s.value.is_finite() {
            last = None;
            continue;
        }
        let continues =
            last.is_some_and(|l| (s.at - l).num_milliseconds() as f64 / 1000.0 <= max_gap);
        if !continues {
            out.push(Vec::new());
        }
        if let Some(seg) = out.last_mut() {
            seg.push((s.at, s.value));
        }
        last = Some(s.at);
    }
    out
}

fn y_bounds(input: &ChartInput) -> (f64, f64) {
    let values = input.series.iter().flat_map(|s| {
        s.current
            .iter()
            .chain(s.baselines.iter().flat_map(|(_, b)| b.iter()))
            .map(|p| p.value)
            .filter(|v| v.is_finite())
    });
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    // Rates and counts start at zero; starting the axis there keeps a 3× jump looking like one.
    let lo = lo.min(0.0);
    let hi = hi.max(0.0);
    let span = hi - lo;
    if span <= 0.0 {
        return (lo, lo + 1.0);
    }
    (lo, hi + span * 0.08)
}

/// Draws the chart and returns it as PNG bytes.
pub fn render_chart(input: &ChartInput) -> Result<Vec<u8>, MetricsError> {
    ensure_font()?;
    let (w, h) = CHART_SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    draw(input, &mut rgb, (w, h))?;
    encode_png(&rgb, w, h)
}

/// A legend line: a series in its colour, or a baseline's dash pattern in grey.
enum Key {
    Solid(RGBColor),
    Dashed(i32, i32),
}

const LEGEND_ROW: i32 = 20;
const LEGEND_COLUMNS: usize = 2;
/// Legend labels longer than this are cut so that two columns fit side by side.
const LEGEND_LABEL: usize = 56;

fn draw(input: &ChartInput, rgb: &mut [u8], size: (u32, u32)) -> Result<(), MetricsError> {
    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;

    let mut keys: Vec<(String, Key)> = input
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.label.clone(), Key::Solid(PALETTE[i % PALETTE.len()])))
        .collect();
    if let Some(first) = input.series.first() {
        for (j, (label, _)) in first.baselines.iter().enumerate() {
            let (dash, gap) = DASHES[j % DASHES.len()];
            keys.push((format!("same, {label} earlier"), Key::Dashed(dash, gap)));
        }
    }
    // The legend goes under the plot rather than over it, where it would hide lines.
    let rows = keys.len().div_ceil(LEGEND_COLUMNS) as i32;
    let legend_height = if rows == 0 { 0 } else { rows * LEGEND_ROW + 16 };
    let (plot, legend) = root.split_vertically(size.1 as i32 - legend_height);

    let start = input.start;
    let end = input.end.max(start + chrono::TimeDelta::seconds(1));
    let (y0, y1) = y_bounds(input);
    let long = end - start > chrono::TimeDelta::days(1);
    let mut chart = ChartBuilder::on(&plot)
        .caption(&input.title, (FONT, 20).into_font().style(FontStyle::Bold))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(start..end, y0..y1)
        .map_err(chart_error)?;
    let time_label = |t: &DateTime<Utc>| {
        t.format(if long { "%m-%d %H:%M" } else { "%H:%M" })
            .to_string()
    };
    let value_label = |v: &f64| format_value(*v);
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&time_label)
        .y_label_formatter(&value_label)
        .x_desc("UTC")
        .y_desc(input.unit.as_deref().unwrap_or(""))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(chart_error)?;

    // Baselines first, so the current lines are drawn over them.
    for (i, s) in input.series.iter().enumerate() {
        let style = lighten(PALETTE[i % PALETTE.len()]).stroke_width(2);
        for (j, (_, samples)) in s.baselines.iter().enumerate() {
            let (dash, gap) = DASHES[j % DASHES.len()];
            chart
                .draw_series(
                    segments(samples, input.step)
                        .into_iter()
                        .map(|seg| DashedPathElement::new(seg, dash, gap, style)),
                )
                .map_err(chart_error)?;
        }
    }
    for (i, s) in input.series.iter().enumerate() {
        let style = PALETTE[i % PALETTE.len()].stroke_width(2);
        chart
            .draw_series(
                segments(&s.current, input.step)
                    .into_iter()
                    .map(|seg| PathElement::new(seg, style)),
            )
            .map_err(chart_error)?;
    }

    let column_width = size.0 as i32 / LEGEND_COLUMNS as i32;
    let text = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (n, (label, key)) in keys.iter().enumerate() {
        let x = 84 + (n % LEGEND_COLUMNS) as i32 * column_width;
        let y = 8 + (n / LEGEND_COLUMNS) as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        let line = vec![(x, y), (x + 26, y)];
        match key {
            Key::Solid(color) => legend.draw(&PathElement::new(line, color.stroke_width(2))),
            Key::Dashed(dash, gap) => legend.draw(&DashedPathElement::new(
                line,
                *dash,
                *gap,
                GREY.stroke_width(2),
            )),
        }
        .map_err(chart_error)?;
        legend
            .draw(&Text::new(
                cut(label, LEGEND_LABEL),
                (x + 34, y),
                text.clone(),
            ))
            .map_err(chart_error)?;
    }
    root.present().map_err(chart_error)?;
    Ok(())
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let kept: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, MetricsError> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(chart_error)?;
        writer.write_image_data(rgb).map_err(chart_error)?;
        writer.finish().map_err(chart_error)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(start: i64, n: i64, step: i64, f: impl Fn(i64) -> f64) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                at: DateTime::from_timestamp(start + i * step, 0).unwrap(),
                value: f(i),
            })
            .collect()
    }

    fn decode(png_bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(png_bytes);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn chart_is_a_png_with_lines_in_series_colours() {
        let t0 = 1_700_000_000;
        let input = ChartInput {
            title: "error_rate service=checkout · last 1h".into(),
            unit: Some("req/s".into()),
            start: DateTime::from_timestamp(t0, 0).unwrap(),
            end: DateTime::from_timestamp(t0 + 3600, 0).unwrap(),
            step: Duration::from_secs(60),
            series: vec![ChartSeries {
                label: "error_rate".into(),
                current: ramp(t0, 61, 60, |i| if i > 30 { 4.5 } else { 1.5 }),
                baselines: vec![
                    ("1d".into(), ramp(t0, 61, 60, |_| 1.5)),
                    ("1w".into(), ramp(t0, 61, 60, |_| 1.2)),
                ],
            }],
        };
        let bytes = render_chart(&input).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let (info, pixels) = decode(&bytes);
        assert_eq!((info.width, info.height), CHART_SIZE);
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let count = |c: RGBColor| {
            pixels
                .chunks(3)
                .filter(|p| p[0] == c.0 && p[1] == c.1 && p[2] == c.2)
                .count()
        };
        assert!(count(PALETTE[0]) > 500, "the current line is missing");
        assert!(
            count(lighten(PALETTE[0])) > 200,
            "the baseline lines are missing"
        );
        // Text was drawn: dark pixels outside the plotted lines.
        let dark = pixels
            .chunks(3)
            .filter(|p| p.iter().all(|&v| v < 80))
            .count();
        assert!(dark > 500, "no text or axes");
    }

    #[test]
    fn gaps_and_non_finite_values_split_lines() {
        let mut s = ramp(0, 5, 60, |i| i as f64);
        s[2].value = f64::NAN;
        s.push(Sample {
            at: DateTime::from_timestamp(3600, 0).unwrap(),
            value: 1.0,
        });
        let segs = segments(&s, Duration::from_secs(60));
        let secs: Vec<Vec<(i64, f64)>> = segs
            .iter()
            .map(|seg| seg.iter().map(|(t, v)| (t.timestamp(), *v)).collect())
            .collect();
        assert_eq!(
            secs,
            [
                vec![(0, 0.0), (60, 1.0)],
                vec![(180, 3.0), (240, 4.0)],
                vec![(3600, 1.0)]
            ]
        );
    }

    #[test]
    fn empty_chart_still_renders() {
        let input = ChartInput {
            title: "nothing".into(),
            unit: None,
            start: DateTime::from_timestamp(0, 0).unwrap(),
            end: DateTime::from_timestamp(600, 0).unwrap(),
            step: Duration::from_secs(15),
            series: vec![],
        };
        let (info, _) = decode(&render_chart(&input).unwrap());
        assert_eq!(info.width, CHART_SIZE.0);
    }
}
