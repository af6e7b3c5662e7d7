//! `report.md`: the render report as Markdown tables for people. Same content as the JSON,
//! fewer decimals; like the JSON it holds nothing that changes between identical renders but
//! the render time.

use super::{DeliverableReport, NodeMeters, RenderReport};
use std::fmt::Write;

/// `v` with `d` decimals, `−∞` for silence, `–` when absent.
fn n(v: f64, d: usize) -> String {
    if v.is_finite() {
        format!("{v:.d$}")
    } else if v == f64::NEG_INFINITY {
        "−∞".into()
    } else {
        "–".into()
    }
}

fn on(v: Option<f64>, d: usize) -> String {
    v.map_or_else(|| "–".into(), |v| n(v, d))
}

/// Escapes `|` so a value cannot break a table row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A section: its heading, then a table (the header row, the rule row, one row per item).
fn table(
    o: &mut String,
    heading: &str,
    head: &str,
    rule: &str,
    rows: impl IntoIterator<Item = String>,
) {
    let _ = writeln!(o, "\n## {heading}\n");
    let _ = writeln!(o, "{head}");
    let _ = writeln!(o, "{rule}");
    for row in rows {
        let _ = writeln!(o, "{row}");
    }
}

/// A section: its heading, then one bullet per item; nothing when there are none.
fn list(o: &mut String, heading: &str, items: impl IntoIterator<Item = String>) {
    let mut items = items.into_iter().peekable();
    if items.peek().is_none() {
        return;
    }
    let _ = writeln!(o, "\n## {heading}\n");
    for item in items {
        let _ = writeln!(o, "- {item}");
    }
}

const METER_HEADER: &str = "| I (LUFS) | S max (LUFS) | M max (LUFS) | LRA (LU) | TP (dBTP) \
                            | sample peak (dBFS) | RMS (dBFS) |";
const METER_RULE: &str = "|---:|---:|---:|---:|---:|---:|---:|";

fn meter_cells(m: &NodeMeters) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {} |",
        n(m.integrated_lufs, 1),
        n(m.short_term_max_lufs, 1),
        n(m.momentary_max_lufs, 1),
        n(m.loudness_range_lu, 1),
        n(m.true_peak_dbtp, 2),
        n(m.sample_peak_dbfs, 2),
        n(m.rms_dbfs, 1),
    )
}

/// The whole report as Markdown.
pub fn render(r: &RenderReport) -> String {
    let mut o = String::new();
    header(&mut o, r);
    deliverables(&mut o, r);
    lossy(&mut o, r);
    masters(&mut o, r);
    platforms(&mut o, r);
    gain_reduction(&mut o, r);
    stems(&mut o, r);
    target_and_null_test(&mut o, r);
    footer(&mut o, r);
    o
}

/// Title, program, recipe, settings.
fn header(o: &mut String, r: &RenderReport) {
    let _ = writeln!(o, "# Render report: {}", r.title);
    if let Some(a) = &r.artist {
        let _ = writeln!(o, "\n{a}");
    }
    let s = &r.settings;
    let _ = writeln!(
        o,
        "\n{} {} · recipe `{}` (sha256 `{}`) · {} Hz · {} s · latency {} samples · tail {} samples",
        r.engine.name,
        r.engine.version,
        r.recipe.path,
        &r.recipe.sha256[..16.min(r.recipe.sha256.len())],
        s.sample_rate_hz,
        n(s.song_duration_s, 2),
        s.latency_samples,
        s.tail_samples
    );
    if s.target_lufs.is_some() || s.ceiling_dbtp.is_some() {
        let _ = writeln!(
            o,
            "\nTarget: {} LUFS integrated, ceiling {} dBTP.",
            on(s.target_lufs, 1),
            on(s.ceiling_dbtp, 1)
        );
    }
}

/// The deliverables, measured from their files, and the analysis' notes on them.
fn deliverables(o: &mut String, r: &RenderReport) {
    table(
        o,
        "Deliverables (measured from the written files)",
        "| file | format | I (LUFS) | S max (LUFS) | M max (LUFS) | LRA (LU) | TP 4× (dBTP) \
         | TP 8× (dBTP) | sample peak (dBFS) | RMS (dBFS) | PLR (dB) | bits used | clipped |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        r.deliverables.iter().map(deliverable_row),
    );
    let notes: Vec<String> = r
        .deliverables
        .iter()
        .flat_map(|d| {
            d.analysis
                .notes
                .iter()
                .map(move |x| format!("- `{}`: {x}", d.file.path))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(o, "\n{}", notes.join("\n"));
    }
}

/// The pre-encode low-pass and limiter of a lossy deliverable (`–` when the plain encode was
/// delivered).
fn limiter_cell(l: &crate::render::codec_safe::LossyOutcome) -> String {
    match (l.pre_encode_lowpass_hz, l.pre_encode_limiter_ceiling_dbtp) {
        (_, None) => "–".into(),
        (Some(hz), Some(c)) => format!("{} kHz, {} dBTP", n(hz / 1000.0, 1), n(c, 2)),
        (None, Some(c)) => format!("none, {} dBTP", n(c, 2)),
    }
}

/// The lossy deliverables: what the codec-safe solve did.
fn lossy(o: &mut String, r: &RenderReport) {
    let rows: Vec<String> = r
        .deliverables
        .iter()
        .filter_map(|d| {
            let l = d.lossy.as_ref()?;
            Some(format!(
                "| `{}` | {} {} kbit/s ({}) | {} | {} | {} | {} | {} | {} | {} ({}% of the song) | {} | {} → {} → {} |",
                cell(&d.file.path),
                l.codec,
                l.bitrate_kbps,
                cell(&l.encoder),
                on(d.ceiling_dbtp, 2),
                n(l.plain_codec_true_peak_dbtp, 2),
                n(l.codec_true_peak_dbtp, 2),
                l.codec_safe,
                n(l.pre_encode_gain_db, 2),
                limiter_cell(l),
                n(l.pre_encode_max_reduction_db, 2),
                n(l.pre_encode_reduced_pct, 1),
                l.encodes,
                n(l.pcm_lufs, 2),
                n(l.plain_decoded_lufs, 2),
                n(l.decoded_lufs, 2),
            ))
        })
        .collect();
    if !rows.is_empty() {
        table(
            o,
            "Lossy deliverables (decoded and measured: codec-safe true peak)",
            "| file | codec | ceiling (dBTP) | plain encode TP (dBTP) | codec TP (dBTP) | solve \
             | pre-encode gain (dB) | pre-encode low-pass, limiter | limiter's largest reduction (dB) | encodes \
             | LUFS: PCM → plain decode → delivered |",
            "|---|---|---:|---:|---:|---|---:|---|---:|---:|---|",
            rows,
        );
    }
}

/// What each platform's normalization does to the master.
fn platforms(o: &mut String, r: &RenderReport) {
    if r.platforms.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\n## Platform normalization (of output `{}`)\n\n{}",
        r.outputs.first().map_or("", |o| o.id.as_str()),
        crate::delivery::platforms::markdown(&r.platforms)
    );
}

/// One deliverable's row.
fn deliverable_row(d: &DeliverableReport) -> String {
    let a = &d.analysis;
    format!(
        "| `{}` | {}-bit{}, {} Hz{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        cell(&d.file.path),
        d.bits,
        if d.bits == 32 { " float" } else { "" },
        d.sample_rate_hz,
        if d.dither == "none" {
            String::new()
        } else {
            format!(", {} dither", d.dither)
        },
        n(a.integrated_lufs, 1),
        n(a.short_term_max_lufs, 1),
        n(a.momentary_max_lufs, 1),
        n(a.loudness_range_lu, 1),
        n(a.true_peak_dbtp, 2),
        on(a.true_peak_8x_dbtp, 2),
        n(a.sample_peak_dbfs, 2),
        n(a.rms_dbfs, 1),
        n(a.plr_db, 1),
        a.effective_bits
            .map_or_else(|| "float".into(), |b| b.to_string()),
        d.clipped_samples,
    )
}

/// The graph's outputs, as rendered.
fn masters(o: &mut String, r: &RenderReport) {
    if !r.outputs.is_empty() {
        table(
            o,
            "Master (graph outputs, before conversion, dither and quantization)",
            &format!("| output {METER_HEADER}"),
            &format!("|---{METER_RULE}"),
            r.outputs
                .iter()
                .map(|out| format!("| `{}` {}", cell(&out.id), meter_cells(&out.meters))),
        );
    }
}

/// The dynamics processors' gain reduction.
fn gain_reduction(o: &mut String, r: &RenderReport) {
    if !r.gain_reduction.is_empty() {
        table(
            o,
            "Gain reduction",
            "| node | kind | max (dB) | mean while active (dB) | active (% of time) |",
            "|---|---|---:|---:|---:|",
            r.gain_reduction.iter().map(|g| {
                format!(
                    "| `{}` | {} | {} | {} | {} |",
                    cell(&g.node),
                    cell(&g.kind),
                    n(g.max_db, 2),
                    n(g.mean_active_db, 2),
                    n(g.active_percent, 1)
                )
            }),
        );
    }
}

/// The stems: files, hashes, meters.
fn stems(o: &mut String, r: &RenderReport) {
    let rows = r.stems.iter().map(|st| {
        let cells = st.meters.as_ref().map_or_else(
            || "| not rendered (reaches no output) | | | | | | |".to_string(),
            meter_cells,
        );
        format!(
            "| {} | `{}` {cells} `{}` |",
            cell(&st.name),
            cell(&st.file.path),
            &st.file.sha256[..16.min(st.file.sha256.len())]
        )
    });
    table(
        o,
        "Stems (after each stem's fader)",
        &format!("| stem | file {METER_HEADER} sha256 |"),
        &format!("|---|---{METER_RULE}---|"),
        rows,
    );
}

/// How the loudness target was met; the null test.
fn target_and_null_test(o: &mut String, r: &RenderReport) {
    if let Some(t) = &r.loudness_target {
        let _ = writeln!(
            o,
            "\n## Loudness target\n\n{:.2} LUFS for a target of {} LUFS: gain {:+.2} dB into `{}`, \
             {:.2} LU of limiting; {} full pass, {} passes of the limiter (its true-peak detector in {}, \
             the others replayed its readings).",
            t.integrated_lufs, t.target_lufs, t.drive_db, t.limiter, t.limiting_cost_lu, t.full_passes, t.tail_passes,
            t.detecting_passes
        );
    }
    if let Some(t) = &r.null_test {
        let _ = writeln!(o, "\n## Null test (stems at unity against the reference)\n");
        let _ = writeln!(
            o,
            "Residual RMS {} dBFS, peak {} dBFS; reference level against the stems {} dB; \
             result: {:?}.",
            n(t.residual_rms_dbfs, 1),
            n(t.residual_peak_dbfs, 1),
            n(t.reference_gain_db, 2),
            t.severity
        );
    }
}

/// Templates and modules, warnings, the render time.
fn footer(o: &mut String, r: &RenderReport) {
    list(
        o,
        "Templates and modules",
        r.recipe_modules
            .iter()
            .map(|m| format!("`{}` (sha256 `{}`)", m.path, m.sha256)),
    );
    list(
        o,
        "Plugins",
        r.plugins.iter().map(|p| {
            let state = match &p.state {
                Some(s) => format!(", state `{}` (sha256 `{}`)", s.path, s.sha256),
                None => String::new(),
            };
            format!("`{}`: `{}`{state}", p.node, p.uri)
        }),
    );
    list(o, "Warnings", r.warnings.iter().cloned());

    let _ = writeln!(
        o,
        "\n---\nRendered in {} s ({}× real time).",
        n(r.run.render_seconds, 2),
        n(r.run.realtime_factor, 0)
    );
}
