//! The match report's PNG (feature `plot`): the reference/master difference, what the proposal
//! predicts and the proposed EQ's response on the fit grid, and the check render's third-octave
//! differences before and after.

use super::report::MatchReport;
use crate::analysis::plot::{font, hz_label, register_font, save_png, PlotError};
use plotters::prelude::*;
use std::path::Path;

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 900;

/// Draws the curves of `report` into a PNG at `png`.
pub fn plot(png: &Path, report: &MatchReport) -> Result<(), PlotError> {
    register_font();
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    let err = |message: String| PlotError::Draw {
        path: png.display().to_string(),
        message,
    };
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let areas = root.split_evenly((2, 1));
        let c = &report.curves;
        let fit: Vec<Curve> = vec![
            (
                "reference − master",
                RGBColor(31, 119, 180),
                zip(&c.fit_hz, &c.difference_db),
            ),
            (
                "proposal (predicted)",
                RGBColor(230, 110, 0),
                zip(&c.fit_hz, &c.predicted_db),
            ),
            (
                "proposed EQ",
                RGBColor(30, 140, 60),
                zip(&c.fit_hz, &c.eq_db),
            ),
            (
                "stem changes",
                RGBColor(150, 60, 170),
                zip(&c.fit_hz, &c.stems_db),
            ),
        ];
        chart(
            &areas[0],
            "Tonal balance: the difference and the fit (mid, loudness-matched)",
            &fit,
        )
        .map_err(err)?;
        if let Some(k) = &report.check {
            let curves = vec![
                (
                    "master − reference, before",
                    RGBColor(200, 30, 30),
                    zip(&k.thirds_hz, &k.before_db),
                ),
                (
                    "after the proposal",
                    RGBColor(30, 140, 60),
                    zip(&k.thirds_hz, &k.after_db),
                ),
            ];
            chart(
                &areas[1],
                "Check render: third-octave bands, loudness-matched",
                &curves,
            )
            .map_err(err)?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    save_png(png, &rgb, (WIDTH, HEIGHT))
}

fn zip(x: &[f64], y: &[f64]) -> Vec<(f64, f64)> {
    x.iter()
        .copied()
        .zip(y.iter().copied())
        .filter(|p| p.1.is_finite())
        .collect()
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// A curve: its name, colour and points.
type Curve<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn chart(area: &Area, title: &str, curves: &[Curve]) -> Result<(), String> {
    let worst = curves
        .iter()
        .flat_map(|c| c.2.iter().map(|p| p.1.abs()))
        .fold(3.0, f64::max);
    let span = (worst / 3.0).ceil() * 3.0;
    let mut ch = ChartBuilder::on(area)
        .caption(title, font(18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d((30.0..20_000.0).log_scale(), -span..span)
        .map_err(|e| e.to_string())?;
    ch.configure_mesh()
        .x_desc("frequency (Hz)")
        .y_desc("dB")
        .label_style(font(15))
        .axis_desc_style(font(16))
        .x_label_formatter(&|f| hz_label(*f))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    for (name, color, pts) in curves {
        let color = *color;
        ch.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    ch.configure_series_labels()
        .label_font(font(15))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}
