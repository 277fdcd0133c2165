//! Rate graphs drawn on the server, as PNG or SVG, for customer portals
//! and e-mails (what operators did with RRD graphs): the same picture as
//! the dashboard's, down stacked above zero by realm and up below it, with
//! the 95th and the commit drawn across. Text uses the embedded DejaVu
//! Sans, so no system font is needed.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::OnceLock;

/// Colours that colour-blind people tell apart (Okabe & Ito), the same
/// as the dashboard's.
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0x00, 0x72, 0xB2),
    (0xE6, 0x9F, 0x00),
    (0x00, 0x9E, 0x73),
    (0xCC, 0x79, 0xA7),
    (0x56, 0xB4, 0xE9),
    (0xD5, 0x5E, 0x00),
    (0xF0, 0xE4, 0x42),
    (0x99, 0x99, 0x99),
];

/// The smallest and largest pictures drawn, in pixels.
pub const WIDTH: (u32, u32) = (200, 4000);
/// See [`WIDTH`].
pub const HEIGHT: (u32, u32) = (120, 2000);

/// One stacked area: a realm × direction.
#[derive(Clone, Debug)]
pub struct Area {
    /// Its legend.
    pub label: String,
    /// Bit/s per bucket, aligned with [`Chart::t`].
    pub bps: Vec<f64>,
    /// Drawn below zero (the up direction).
    pub below: bool,
    /// Index into [`PALETTE`].
    pub colour: usize,
}

/// A horizontal line across the graph (the 95th, the commit).
#[derive(Clone, Debug)]
pub struct Level {
    /// Its legend.
    pub label: String,
    /// Bit/s; negative below zero.
    pub bps: f64,
    /// Its colour.
    pub colour: (u8, u8, u8),
}

/// What to draw.
#[derive(Clone, Debug)]
pub struct Chart {
    /// The title (the tenant, or the site).
    pub title: String,
    /// Bucket starts, Unix seconds, ascending.
    pub t: Vec<i64>,
    /// The end of the last bucket.
    pub end: i64,
    /// The zone the time axis is labelled in.
    pub zone: jiff::tz::TimeZone,
    /// The zone's name, shown under the axis.
    pub zone_name: String,
    /// Stacked areas.
    pub areas: Vec<Area>,
    /// Lines across.
    pub levels: Vec<Level>,
}

/// PNG or SVG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A PNG picture.
    Png,
    /// An SVG document.
    Svg,
}

impl Format {
    /// Its content type.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Svg => "image/svg+xml",
        }
    }
}

/// Why a graph could not be drawn.
#[derive(Debug)]
pub enum GraphError {
    /// A size outside [`WIDTH`] × [`HEIGHT`], naming the field.
    Size {
        /// `width` or `height`.
        field: &'static str,
        /// What was asked.
        value: u32,
    },
    /// Drawing failed.
    Draw(String),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::Size { field, value } => {
                let (lo, hi) = if *field == "width" { WIDTH } else { HEIGHT };
                write!(f, "{field} {value} is outside {lo}–{hi} pixels")
            }
            GraphError::Draw(m) => write!(f, "the graph cannot be drawn: {m}"),
        }
    }
}

impl std::error::Error for GraphError {}

fn font() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // The bytes are DejaVu Sans, valid: this cannot fail.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Bits per second with an SI prefix, as the dashboard writes them.
pub fn bit_rate(bps: f64) -> String {
    const P: [&str; 6] = ["", "k", "M", "G", "T", "P"];
    let mut v = bps.abs();
    let mut i = 0;
    while v >= 1000.0 && i < P.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{}{s} {}bit/s", if bps < 0.0 { "-" } else { "" }, P[i])
}

/// Each area's values stacked on its side's earlier ones, signed.
fn stacked(chart: &Chart) -> Vec<Vec<f64>> {
    let n = chart.t.len();
    let mut sums = [vec![0.0; n], vec![0.0; n]];
    chart
        .areas
        .iter()
        .map(|a| {
            let side = usize::from(a.below);
            let sign = if a.below { -1.0 } else { 1.0 };
            (0..n)
                .map(|i| {
                    sums[side][i] += a.bps.get(i).copied().unwrap_or(0.0).max(0.0);
                    sign * sums[side][i]
                })
                .collect()
        })
        .collect()
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let sums = stacked(chart);
    let mut top = sums.iter().flatten().fold(0.0f64, |a, v| a.max(*v));
    let mut bottom = sums.iter().flatten().fold(0.0f64, |a, v| a.min(*v));
    for l in &chart.levels {
        top = top.max(l.bps);
        bottom = bottom.min(l.bps);
    }
    if top - bottom <= 0.0 {
        top = 1000.0;
    }
    let pad = (top - bottom) * 0.08;
    let (top, bottom) = (top + pad, if bottom < 0.0 { bottom - pad } else { 0.0 });
    let x0 = chart.t.first().copied().unwrap_or(chart.end - 300);
    let x1 = chart.end.max(x0 + 1);
    let zone = chart.zone.clone();
    let days = (x1 - x0) > 2 * 86_400;
    let x_label = move |x: &i64| {
        jiff::Timestamp::from_second(*x).map_or_else(
            |_| String::new(),
            |t| {
                let z = t.to_zoned(zone.clone());
                if days {
                    z.strftime("%m-%d").to_string()
                } else {
                    z.strftime("%m-%d %H:%M").to_string()
                }
            },
        )
    };
    let mut c = ChartBuilder::on(&root)
        .caption(
            &chart.title,
            ("sans-serif", 16).into_font().style(FontStyle::Bold),
        )
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(84)
        .build_cartesian_2d(x0..x1, bottom..top)?;
    c.configure_mesh()
        .x_labels(6)
        .y_labels(7)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y: &f64| bit_rate(y.abs()))
        .x_desc(format!("time in {}", chart.zone_name))
        .label_style(("sans-serif", 11))
        .light_line_style(RGBColor(230, 230, 230))
        .draw()?;
    // Outermost sum first, so each inner area is painted over it.
    let mut order: Vec<usize> = (0..chart.areas.len()).collect();
    order.reverse();
    for i in order {
        let a = &chart.areas[i];
        let (r, g, b) = PALETTE[a.colour % PALETTE.len()];
        let colour = RGBColor(r, g, b);
        let points: Vec<(i64, f64)> = chart
            .t
            .iter()
            .copied()
            .zip(sums[i].iter().copied())
            .collect();
        c.draw_series(AreaSeries::new(points, 0.0, colour.mix(0.85)).border_style(colour))?
            .label(a.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    c.draw_series(LineSeries::new(
        [(x0, 0.0), (x1, 0.0)],
        BLACK.stroke_width(1),
    ))?;
    for l in &chart.levels {
        let (r, g, b) = l.colour;
        let colour = RGBColor(r, g, b);
        c.draw_series(DashedLineSeries::new(
            [(x0, l.bps), (x1, l.bps)],
            8,
            4,
            colour.stroke_width(2),
        ))?
        .label(format!("{} {}", l.label, bit_rate(l.bps.abs())))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], colour.stroke_width(2)));
    }
    if !chart.areas.is_empty() || !chart.levels.is_empty() {
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 11))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
    }
    root.present()
}

/// Draws `chart` at `width` × `height` pixels.
pub fn render(
    chart: &Chart,
    format: Format,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, GraphError> {
    if !(WIDTH.0..=WIDTH.1).contains(&width) {
        return Err(GraphError::Size {
            field: "width",
            value: width,
        });
    }
    if !(HEIGHT.0..=HEIGHT.1).contains(&height) {
        return Err(GraphError::Size {
            field: "height",
            value: height,
        });
    }
    font();
    let err = |e: &dyn std::fmt::Display| GraphError::Draw(e.to_string());
    match format {
        Format::Svg => {
            let mut s = String::new();
            draw(
                SVGBackend::with_string(&mut s, (width, height)).into_drawing_area(),
                chart,
            )
            .map_err(|e| err(&e))?;
            Ok(s.into_bytes())
        }
        Format::Png => {
            let mut rgb = vec![0u8; width as usize * height as usize * 3];
            draw(
                BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area(),
                chart,
            )
            .map_err(|e| err(&e))?;
            let mut out = Vec::with_capacity(rgb.len() / 8);
            let mut enc = png::Encoder::new(&mut out, width, height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Fast);
            let mut w = enc.write_header().map_err(|e| err(&e))?;
            w.write_image_data(&rgb).map_err(|e| err(&e))?;
            w.finish().map_err(|e| err(&e))?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        let t: Vec<i64> = (0..288).map(|i| 1_793_491_200 + i * 300).collect();
        Chart {
            title: "alice".into(),
            end: t[287] + 300,
            zone: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
            zone_name: "Europe/Berlin".into(),
            areas: vec![
                Area {
                    label: "national down".into(),
                    bps: (0..288).map(|i| 1e6 * f64::from(i % 50)).collect(),
                    below: false,
                    colour: 0,
                },
                Area {
                    label: "national up".into(),
                    bps: vec![2e6; 288],
                    below: true,
                    colour: 0,
                },
            ],
            levels: vec![Level {
                label: "95th".into(),
                bps: 45e6,
                colour: (0xD5, 0x5E, 0),
            }],
            t,
        }
    }

    #[test]
    fn a_png_is_a_png_of_the_size_asked() {
        let png = render(&chart(), Format::Png, 640, 300).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let d = png::Decoder::new(std::io::Cursor::new(&png))
            .read_info()
            .unwrap();
        assert_eq!((d.info().width, d.info().height), (640, 300));
    }

    #[test]
    fn an_svg_carries_its_legend_and_levels_as_text() {
        let svg = String::from_utf8(render(&chart(), Format::Svg, 640, 300).unwrap()).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("national down"));
        assert!(
            svg.contains("95th 45 Mbit/s"),
            "the 95th is labelled with its value"
        );
        assert!(svg.contains("time in Europe/Berlin"));
    }

    #[test]
    fn sizes_out_of_bounds_are_refused_naming_the_field() {
        let e = render(&chart(), Format::Png, 10, 300).unwrap_err();
        assert!(matches!(e, GraphError::Size { field: "width", .. }), "{e}");
        let e = render(&chart(), Format::Svg, 400, 9000).unwrap_err();
        assert!(e.to_string().starts_with("height 9000"), "{e}");
    }

    #[test]
    fn an_empty_range_still_draws() {
        let mut c = chart();
        c.areas.clear();
        c.levels.clear();
        c.t.clear();
        assert!(render(&c, Format::Png, 300, 200).is_ok());
    }

    #[test]
    fn rates_read_as_the_dashboard_writes_them() {
        assert_eq!(bit_rate(0.0), "0 bit/s");
        assert_eq!(bit_rate(12_345_678.0), "12.3 Mbit/s");
        assert_eq!(bit_rate(2.5e9), "2.5 Gbit/s");
        assert_eq!(bit_rate(1000.0), "1 kbit/s");
    }
}
