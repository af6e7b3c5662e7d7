//! The PNG of `stemgraph analyze --plot`: loudness and true peak over time and the averaged
//! spectrum of a file, with a reference's curves and the spectrum difference when given.
//!
//! Drawn with `plotters`' bitmap backend; text uses the DejaVu Sans subset bundled in
//! `assets/fonts` (registered once, so no system font or fontconfig is involved). The image is
//! drawn in memory and encoded by `png` into a file written atomically: a failed plot leaves
//! nothing behind.

use super::analyze::Analysis;
use super::series::SeriesPoint;
use super::spectrum::Spectrum;
use crate::io::atomic::{AtomicFile, OutputError};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::io::Write;
use std::path::Path;

/// Width of the PNG, pixels.
pub const PLOT_WIDTH: u32 = 1600;
/// Height of the PNG, pixels.
pub const PLOT_HEIGHT: u32 = 1100;

/// The bundled font (see `assets/fonts/README.md` for its origin and license).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");
/// The family name text styles use.
const FAMILY: &str = "sans-serif";

/// Spectrum display: points per octave and band width (1/6 octave).
const SPECTRUM_POINTS_PER_OCTAVE: usize = 24;
const SPECTRUM_BAND_OCT: f64 = 1.0 / 6.0;
/// Spectrum display range, Hz (capped at the lower Nyquist frequency).
const SPECTRUM_LO_HZ: f64 = 20.0;
const SPECTRUM_HI_HZ: f64 = 20_000.0;

const BLUE_S: RGBColor = RGBColor(31, 119, 180);
const BLUE_M: RGBColor = RGBColor(158, 202, 225);
const ORANGE: RGBColor = RGBColor(230, 110, 0);
const RED: RGBColor = RGBColor(200, 30, 30);
const GREY: RGBColor = RGBColor(120, 120, 120);
const GREEN: RGBColor = RGBColor(30, 140, 60);

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The PNG could not be created or renamed into place.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Drawing or encoding failed.
    #[error("cannot draw the plot {path}: {message}")]
    Draw {
        /// The PNG.
        path: String,
        /// What plotters said.
        message: String,
    },
}

/// Registers the bundled font with plotters (once per process); text styles then use
/// [`font`].
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse (see the tests), so this cannot fail.
        let ok = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok();
        debug_assert!(ok, "the bundled font does not parse");
    });
}

/// Draws `file` (and `reference`, if any) into a `PLOT_WIDTH` × `PLOT_HEIGHT` PNG at `png`.
pub fn plot(png: &Path, file: &Analysis, reference: Option<&Analysis>) -> Result<(), PlotError> {
    register_font();
    let err = |message: String| PlotError::Draw {
        path: png.display().to_string(),
        message,
    };
    let mut rgb = vec![0u8; (PLOT_WIDTH * PLOT_HEIGHT * 3) as usize];
    {
        let root =
            BitMapBackend::with_buffer(&mut rgb, (PLOT_WIDTH, PLOT_HEIGHT)).into_drawing_area();
        draw(&root, file, reference).map_err(err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    save_png(png, &rgb, (PLOT_WIDTH, PLOT_HEIGHT))
}

/// Encodes an RGB buffer of `size` pixels as a PNG written atomically at `png`.
pub fn save_png(png: &Path, rgb: &[u8], size: (u32, u32)) -> Result<(), PlotError> {
    let err = |message: String| PlotError::Draw {
        path: png.display().to_string(),
        message,
    };
    let (atomic, mut writer) = AtomicFile::create(png, &[])?;
    let mut enc = ::png::Encoder::new(&mut writer, size.0, size.1);
    enc.set_color(::png::ColorType::Rgb);
    enc.set_depth(::png::BitDepth::Eight);
    let encoded = enc.write_header().and_then(|mut w| {
        w.write_image_data(rgb)?;
        w.finish()
    });
    encoded.map_err(|e| err(e.to_string()))?;
    writer.flush().map_err(|source| OutputError::Io {
        path: png.to_path_buf(),
        source,
    })?;
    drop(writer);
    atomic.commit()?;
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// The bundled font at `size` pixels.
pub fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}

fn file_name(a: &Analysis) -> String {
    a.figures
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| a.figures.path.display().to_string())
}

/// A number for captions: `−∞` for silence, `n/a` when undefined.
fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}").replace('-', "−")
    } else if v == f64::NEG_INFINITY {
        "−∞".into()
    } else {
        "n/a".into()
    }
}

fn draw(root: &Area, file: &Analysis, reference: Option<&Analysis>) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (title, rest) = root.split_vertically(if reference.is_some() { 84 } else { 56 });
    draw_title(&title, file, reference)?;
    let h = rest.dim_in_pixel().1;
    let (loud, rest) = rest.split_vertically(h * 40 / 100);
    let (peak, spec) = rest.split_vertically(h * 20 / 100);
    draw_loudness(&loud, file, reference)?;
    draw_true_peak(&peak, file, reference)?;
    match reference {
        Some(r) => {
            let (left, right) = spec.split_horizontally(PLOT_WIDTH * 55 / 100);
            draw_spectrum(&left, file, Some(r))?;
            draw_difference(&right, file, r)?;
        }
        None => draw_spectrum(&spec, file, None)?,
    }
    Ok(())
}

fn summary(a: &Analysis) -> String {
    let f = &a.figures;
    format!(
        "I {} LUFS   LRA {} LU   S max {} LUFS   M max {} LUFS   TP {} dBTP ({}×)   PLR {} dB   \
         {} Hz, {} ch, {} s",
        num(f.integrated_lufs, 1),
        num(f.loudness_range_lu, 1),
        num(f.short_term_max_lufs, 1),
        num(f.momentary_max_lufs, 1),
        num(f.true_peak_dbtp, 2),
        f.true_peak_oversampling,
        num(f.plr_db, 1),
        f.sample_rate_hz,
        f.channels,
        num(f.duration_s, 1),
    )
}

fn draw_title(area: &Area, file: &Analysis, reference: Option<&Analysis>) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    area.draw_text(&file_name(file), &font(24).color(&BLACK), (20, 8))
        .map_err(e)?;
    area.draw_text(&summary(file), &font(17).color(&BLUE_S), (20, 36))
        .map_err(e)?;
    if let Some(r) = reference {
        let text = format!("reference {}:  {}", file_name(r), summary(r));
        area.draw_text(&text, &font(17).color(&ORANGE), (20, 60))
            .map_err(e)?;
    }
    Ok(())
}

/// Finite values of `f` over the points.
fn finite<'a>(
    points: &'a [SeriesPoint],
    f: impl Fn(&SeriesPoint) -> f64 + 'a,
) -> impl Iterator<Item = f64> + 'a {
    points.iter().map(f).filter(|v| v.is_finite())
}

fn duration(file: &Analysis, reference: Option<&Analysis>) -> f64 {
    let d = reference.map_or(0.0, |r| r.figures.duration_s);
    file.figures.duration_s.max(d).max(0.1)
}

/// Rounds `v` up to a multiple of `step`.
fn ceil_to(v: f64, step: f64) -> f64 {
    (v / step).ceil() * step
}

fn draw_loudness(area: &Area, file: &Analysis, reference: Option<&Analysis>) -> Result<(), String> {
    let all = std::iter::once(file).chain(reference);
    let top = all
        .clone()
        .flat_map(|a| finite(&a.series.points, |p| p.momentary_lufs))
        .fold(f64::NEG_INFINITY, f64::max);
    let hi = if top.is_finite() {
        ceil_to(top, 5.0) + 3.0
    } else {
        -20.0
    };
    let lo = hi - 48.0;
    let t_max = duration(file, reference);
    let mut chart = ChartBuilder::on(area)
        .caption("Loudness (BS.1770 / EBU R128)", font(20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..t_max, lo..hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(time_desc(t_max))
        .y_desc("LUFS")
        .x_label_formatter(&|t| time_label(*t, t_max))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(font(15))
        .axis_desc_style(font(16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    let clamp = |v: f64| if v.is_finite() { v.clamp(lo, hi) } else { lo };
    let pts = &file.series.points;
    chart
        .draw_series(LineSeries::new(
            pts.iter().map(|p| (p.t_s, clamp(p.momentary_lufs))),
            BLUE_M.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?
        .label("momentary (400 ms)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLUE_M.stroke_width(3)));
    chart
        .draw_series(LineSeries::new(
            pts.iter().map(|p| (p.t_s, clamp(p.short_term_lufs))),
            BLUE_S.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label("short-term (3 s)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLUE_S.stroke_width(3)));
    let i = file.figures.integrated_lufs;
    if i.is_finite() {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, clamp(i)), (t_max, clamp(i))],
                10,
                6,
                GREEN.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(format!("integrated {} LUFS", num(i, 1)))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], GREEN.stroke_width(3)));
    }
    if let Some(r) = reference {
        chart
            .draw_series(LineSeries::new(
                r.series
                    .points
                    .iter()
                    .map(|p| (p.t_s, clamp(p.short_term_lufs))),
                ORANGE.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label("reference short-term")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], ORANGE.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .label_font(font(15))
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())
}

fn draw_true_peak(
    area: &Area,
    file: &Analysis,
    reference: Option<&Analysis>,
) -> Result<(), String> {
    let all = std::iter::once(file).chain(reference);
    let top = all
        .clone()
        .flat_map(|a| finite(&a.series.points, |p| p.true_peak_dbtp))
        .fold(f64::NEG_INFINITY, f64::max);
    let bottom = all
        .flat_map(|a| finite(&a.series.points, |p| p.true_peak_dbtp))
        .fold(f64::INFINITY, f64::min);
    let hi = if top.is_finite() {
        ceil_to(top.max(-1.0), 3.0) + 1.0
    } else {
        1.0
    };
    let lo = if bottom.is_finite() {
        (bottom.floor() - 2.0).max(hi - 48.0).min(hi - 12.0)
    } else {
        hi - 24.0
    };
    let t_max = duration(file, reference);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "True peak per {} s ({}× oversampling, BS.1770-4)",
                num(file.series.point_s, 1),
                file.figures.true_peak_oversampling
            ),
            font(18),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..t_max, lo..hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .y_desc("dBTP")
        .x_label_formatter(&|t| time_label(*t, t_max))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(font(15))
        .axis_desc_style(font(16))
        .y_labels(6)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    let clamp = |v: f64| if v.is_finite() { v.clamp(lo, hi) } else { lo };
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, -1.0), (t_max, -1.0)],
            6,
            6,
            GREY.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
    if let Some(r) = reference {
        chart
            .draw_series(LineSeries::new(
                r.series
                    .points
                    .iter()
                    .map(|p| (p.t_s, clamp(p.true_peak_dbtp))),
                ORANGE.mix(0.8).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
    }
    chart
        .draw_series(LineSeries::new(
            file.series
                .points
                .iter()
                .map(|p| (p.t_s, clamp(p.true_peak_dbtp))),
            RED.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Upper display frequency: 20 kHz or the lower Nyquist frequency.
fn spectrum_hi(a: &Spectrum, b: Option<&Spectrum>) -> f64 {
    let ny = b.map_or(a.nyquist_hz(), |b| a.nyquist_hz().min(b.nyquist_hz()));
    SPECTRUM_HI_HZ.min(ny)
}

fn smoothed(s: &Spectrum, hi: f64) -> Vec<(f64, f64)> {
    s.smoothed(
        SPECTRUM_LO_HZ,
        hi,
        SPECTRUM_POINTS_PER_OCTAVE,
        SPECTRUM_BAND_OCT,
    )
}

fn draw_spectrum(area: &Area, file: &Analysis, reference: Option<&Analysis>) -> Result<(), String> {
    let Some(spec) = file.spectrum.as_ref() else {
        return Ok(());
    };
    let rspec = reference.and_then(|r| r.spectrum.as_ref());
    let hi_hz = spectrum_hi(spec, rspec);
    let curve = smoothed(spec, hi_hz);
    let rcurve = rspec.map(|r| smoothed(r, hi_hz));
    let top = curve
        .iter()
        .chain(rcurve.iter().flatten())
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let hi = if top.is_finite() {
        ceil_to(top, 10.0) + 5.0
    } else {
        0.0
    };
    let lo = hi - 90.0;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Average spectrum (1/6-octave bands, Welch, Hann, 8192 points)",
            font(18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d((SPECTRUM_LO_HZ..hi_hz).log_scale(), lo..hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("frequency (Hz)")
        .y_desc("band level (dBFS)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(font(15))
        .axis_desc_style(font(16))
        .x_label_formatter(&|f| hz_label(*f))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    let clamp = |v: f64| if v.is_finite() { v.clamp(lo, hi) } else { lo };
    if let Some(rc) = &rcurve {
        chart
            .draw_series(LineSeries::new(
                rc.iter().map(|&(f, l)| (f, clamp(l))),
                ORANGE.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label("reference")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], ORANGE.stroke_width(3)));
    }
    chart
        .draw_series(LineSeries::new(
            curve.iter().map(|&(f, l)| (f, clamp(l))),
            BLUE_S.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label(file_name(file))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLUE_S.stroke_width(3)));
    chart
        .configure_series_labels()
        .label_font(font(15))
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(|e| e.to_string())
}

fn draw_difference(area: &Area, file: &Analysis, reference: &Analysis) -> Result<(), String> {
    let (Some(a), Some(b)) = (file.spectrum.as_ref(), reference.spectrum.as_ref()) else {
        return Ok(());
    };
    let hi_hz = spectrum_hi(a, Some(b));
    let diff: Vec<(f64, f64)> = smoothed(a, hi_hz)
        .into_iter()
        .zip(smoothed(b, hi_hz))
        .map(|((f, x), (_, y))| (f, x - y))
        .filter(|p| p.1.is_finite())
        .collect();
    let worst = diff.iter().map(|p| p.1.abs()).fold(0.0, f64::max);
    let span = ceil_to(worst.clamp(3.0, 24.0), 3.0);
    let mut chart = ChartBuilder::on(area)
        .caption("Spectrum difference (file − reference)", font(18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d((SPECTRUM_LO_HZ..hi_hz).log_scale(), -span..span)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("frequency (Hz)")
        .y_desc("dB")
        .label_style(font(15))
        .axis_desc_style(font(16))
        .x_label_formatter(&|f| hz_label(*f))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            [(SPECTRUM_LO_HZ, 0.0), (hi_hz, 0.0)],
            GREY.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            diff.iter().map(|&(f, d)| (f, d.clamp(-span, span))),
            GREEN.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Above this length, times are labelled `m:ss`.
const CLOCK_ABOVE_S: f64 = 120.0;

fn time_desc(t_max: f64) -> &'static str {
    if t_max > CLOCK_ABOVE_S {
        "time (m:ss)"
    } else {
        "time (s)"
    }
}

/// `12.5` (seconds) for short programmes, `3:05` for long ones.
fn time_label(t: f64, t_max: f64) -> String {
    if t_max > CLOCK_ABOVE_S {
        let s = t.round() as u64;
        format!("{}:{:02}", s / 60, s % 60)
    } else if t_max > 10.0 {
        format!("{t:.0}")
    } else {
        format!("{t:.1}")
    }
}

/// `1k`, `20k`, `200` style frequency labels.
pub fn hz_label(f: f64) -> String {
    if f >= 1000.0 {
        let k = f / 1000.0;
        if (k - k.round()).abs() < 1e-6 {
            format!("{}k", k.round())
        } else {
            format!("{k:.1}k")
        }
    } else {
        format!("{}", f.round())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_font_parses() {
        assert!(plotters::style::register_font("test-font", FontStyle::Normal, FONT).is_ok());
    }

    #[test]
    fn frequency_labels() {
        assert_eq!(hz_label(1000.0), "1k");
        assert_eq!(hz_label(20_000.0), "20k");
        assert_eq!(hz_label(2500.0), "2.5k");
        assert_eq!(hz_label(200.0), "200");
    }
}
