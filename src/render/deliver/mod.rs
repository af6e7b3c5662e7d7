//! Deliverables: one output of the graph turned into one file.
//!
//! The pipeline of every deliverable is: sample-rate conversion (when it asks for another rate)
//! → true-peak safety limiter (when a ceiling is declared; transparent below it) → dither (TPDF,
//! by default for 16-bit) → quantize → WAV or FLAC (with tags), written atomically. A lossy
//! deliverable (MP3, Ogg Opus) stops before dither: its float PCM goes to a temporary file, and
//! the codec-safe solve ([`super::codec_safe`]) encodes it, decodes and measures the result, and
//! encodes again with lowered peaks until the decoded true peak is under the ceiling.
//! Resampling recreates inter-sample peaks, which is why the safety limiter comes after it.
//!
//! Every deliverable is produced while the graph runs, block by block as the output comes, at
//! its own rate too (the output converted as it comes: [`stream`]), so memory stays flat and
//! nothing is read back. Its samples are measured as they are written, as the file's decoder
//! will read them back (loudness, true peak, levels: the report's analysis and a WAV's `bext`
//! loudness), so no file is decoded after it is written. Deliverables holding the same samples
//! (a WAV and a FLAC at the same rate and word length) share their stages and their
//! measurement. [`file`] is what each deliverable asks for and its encoder, [`stages`] the
//! safety limiter and dither.
//!
//! In a render, the run stage (or, with a loudness target, the target stage) opens the
//! deliverables ([`open_all`]) and writes them as the graph runs; the deliver stage ([`finish`])
//! completes them.

mod file;
mod stages;
mod stream;

use super::{RenderContext, RenderError};
use crate::analysis::analyze::StreamAnalyzer;
use crate::dsp::AudioRef;
use crate::engine::Schedule;
use crate::io::wav::WavSummary;
use crate::session::{Deliverable, FileFormat, Session};
use std::path::{Path, PathBuf};
use stream::{Feed, Finished};

/// How far under the deliverable's ceiling the safety limiter aims, dB, on top of the
/// limiter's own detection margin: its 8× detector under-reads the inter-sample peaks of dense
/// material near fs/2 by up to about 0.12 dB at 44.1 kHz (by a 16× reference), more than the
/// limiter's own 0.1 dB margin covers. With this the ceiling holds against a 16× reference on
/// every deliverable (tests/trust_render.rs measures it at 44.1 and 48 kHz on the demo,
/// tests/trust_real.rs on the real corpus songs, by the 16× reference and by ffmpeg's meter).
pub const SAFETY_MARGIN_DB: f64 = 0.1;

/// A file a render produced.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredFile {
    /// What was written (path, frames, clipped samples), WAV or FLAC.
    pub wav: WavSummary,
    /// Container and codec.
    pub format: FileFormat,
    /// Bits per sample.
    pub bits: u32,
    /// Sample rate.
    pub sample_rate: u32,
    /// The output node it came from.
    pub output: String,
    /// Whether it was dithered.
    pub dithered: bool,
    /// The safety limiter's ceiling, if one ran.
    pub ceiling_dbtp: Option<f64>,
    /// The safety limiter's largest gain reduction, dB (0 when it never acted).
    pub safety_gain_reduction_db: f64,
    /// The file's analysis, measured from its samples as they were written (as its decoder reads
    /// them back); the report uses it instead of decoding the file. `None` for a lossy file.
    pub measured: Option<Box<crate::analysis::analyze::FileAnalysis>>,
    /// A lossy deliverable (MP3, Opus): what the codec-safe solve did.
    pub lossy: Option<super::codec_safe::LossyOutcome>,
}

/// The schedule output deliverable `d` is made from (its index and id): the one it names, or the
/// graph's only one.
pub(super) fn output_of(
    d: &Deliverable,
    schedule: &Schedule,
    at: &str,
) -> Result<(usize, String), RenderError> {
    // The engine's own outputs (a loudness solve's readings) have ids starting with `__`.
    let (indices, outputs): (Vec<usize>, Vec<&str>) = (0..schedule.output_count())
        .map(|o| (o, schedule.output_slot(o).id.as_str()))
        .filter(|(_, id)| !crate::graph::is_internal(id))
        .unzip();
    let at_index = match &d.output {
        Some(id) => outputs.iter().position(|o| o == id).ok_or_else(|| {
            RenderError::Invalid(format!(
                "{at}deliverable `{}` names output `{id}`, but the graph's outputs are: {}",
                d.file,
                outputs.join(", ")
            ))
        })?,
        None if outputs.len() == 1 => 0,
        None => {
            return Err(RenderError::Invalid(format!(
            "{at}the graph has several outputs ({}): say which one deliverable `{}` is made from",
            outputs.join(", "),
            d.file
        )))
        }
    };
    Ok((indices[at_index], outputs[at_index].to_string()))
}

/// Expands `{title}` (made safe for file names) in a file pattern.
pub fn expand_file_name(pattern: &str, session: &Session) -> String {
    let title: String = session
        .title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    pattern.replace("{title}", title.trim())
}

/// The files a render must never write over: the stems, the reference, the recipe and its
/// modules and templates.
pub(crate) fn protected_inputs(session: &Session) -> Vec<PathBuf> {
    super::preflight::inputs_of(session)
}

/// Every deliverable of a render being written: the outputs they are made from, at each
/// rate ([`Feed`]), and which file is which deliverable.
#[derive(Default)]
pub(crate) struct Deliveries {
    feeds: Vec<Feed>,
    /// Deliverables in the recipe.
    count: usize,
    /// Whether the analyses' loudness meters K-weight their hops two by two
    /// ([`Self::start_pairing`]); decided at the first block written.
    paired: Option<bool>,
    /// Loudness meters lent by deliverables written elsewhere ([`Self::lend_across`]).
    borrowed: Vec<Borrowed>,
}

/// A deliverable's analysis measured in another share of the deliverables than its own
/// ([`Deliveries::lend_across`]): fed the output's blocks as its file reads them back.
struct Borrowed {
    output: usize,
    format: crate::io::wav::WavFormat,
    analyzer: StreamAnalyzer,
    /// Frames it is still lent for, and those it was fed.
    left: u64,
    fed: u64,
}

impl Deliveries {
    /// Whether there is no deliverable.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Takes one block of output `output` (at the session rate).
    pub fn write(&mut self, output: usize, block: AudioRef<'_>) -> Result<(), RenderError> {
        if self.paired.is_none() {
            self.start_pairing();
        }
        for f in self.feeds.iter_mut().filter(|f| f.output_index == output) {
            f.write(block)?;
        }
        for b in self.borrowed.iter_mut().filter(|b| b.output == output) {
            let (format, n) = (b.format, (block.frames() as u64).min(b.left) as usize);
            b.left -= n as u64;
            b.fed += n as u64;
            block.slice(0, n).with_planes(|planes| {
                b.analyzer.push(planes, n, |from, to| {
                    crate::io::wav::read_back(from, to, format)
                })
            });
        }
        if self.paired == Some(true) {
            self.pair_parked();
        }
        Ok(())
    }

    /// When two stereo analyses or more measure their own loudness (not lent), each keeps its
    /// whole hops ([`StreamAnalyzer::park_loudness`]) and [`Self::pair_parked`] K-weights them
    /// two by two after each block: the same figures, for about half the time of the
    /// loudness meters' filters (on workload M, the 48 kHz and the 44.1 kHz deliverables').
    fn start_pairing(&mut self) {
        let ready = |a: &StreamAnalyzer| a.channels() == 2 && !a.loudness_is_lent();
        let ready_count = self.analyzers().filter(|a| ready(a)).count();
        let paired = ready_count >= 2;
        if paired {
            for a in self.analyzers() {
                if ready(a) {
                    a.park_loudness();
                }
            }
        }
        self.paired = Some(paired);
    }

    /// Measures the loudness of the hops the analyses keep, two analyses at a time
    /// ([`StreamAnalyzer::pair_parked`]).
    fn pair_parked(&mut self) {
        let mut held: Option<&mut StreamAnalyzer> = None;
        for a in self.analyzers() {
            if !a.has_parked() {
                continue;
            }
            held = match held.take() {
                None => Some(a),
                Some(h) => {
                    StreamAnalyzer::pair_parked(h, a);
                    if h.has_parked() {
                        Some(h)
                    } else if a.has_parked() {
                        Some(a)
                    } else {
                        None
                    }
                }
            };
        }
    }

    /// Every analysis: the deliverables' and those of the meters borrowed.
    fn analyzers(&mut self) -> impl Iterator<Item = &mut StreamAnalyzer> + '_ {
        self.feeds
            .iter_mut()
            .flat_map(Feed::analyzers)
            .chain(self.borrowed.iter_mut().map(|b| &mut b.analyzer))
    }

    /// Lends the analysis of one of these deliverables (made from an output whose first
    /// `frames` frames it holds as they come: [`Feed::lend_analyzer`]) to `other`, a share of
    /// the deliverables written on another thread that measures a stereo analysis of the same
    /// output: there it is fed the output's blocks, each read back as its file holds it, and
    /// its loudness meter K-weights its hops beside that analysis's
    /// ([`StreamAnalyzer::park_loudness`]) instead of alone here. The pass keeping the lighter
    /// share of a render on two threads (the limiter and workload M's 24-bit file) was still
    /// the busier one (perf, M's final pass: 0.27 s to the writer's 0.23 s, lending only the
    /// loudness meter); the 24-bit file's true peak and levels, measured on the writer, even
    /// the two out. The same figures, bit for bit. Whether it lent one;
    /// [`Self::return_borrowed`] gives it back.
    pub fn lend_across(&mut self, other: &mut Deliveries, frames: u64) -> bool {
        if frames == 0 {
            return false;
        }
        for f in 0..self.feeds.len() {
            let output = self.feeds[f].output_index;
            let pairs = other
                .feeds
                .iter_mut()
                .filter(|g| g.output_index == output)
                .flat_map(Feed::analyzers)
                .any(|a| a.channels() == 2 && !a.loudness_is_lent());
            if !pairs {
                continue;
            }
            let Some((analyzer, format)) = self.feeds[f].lend_analyzer() else {
                continue;
            };
            if analyzer.channels() != 2 {
                // (Not K-weighted beside a stereo analysis: it stays.)
                let _ = self.feeds[f].return_analyzer(analyzer, 0);
                continue;
            }
            other.borrowed.push(Borrowed {
                output,
                format,
                analyzer,
                left: frames,
                fed: 0,
            });
            return true;
        }
        false
    }

    /// Gives every borrowed analysis back to its deliverable ([`Self::lend_across`]), once
    /// these deliverables are together again ([`Self::join`]) and everything was written.
    pub fn return_borrowed(&mut self) -> Result<(), RenderError> {
        let lost = |e: String| RenderError::Invalid(format!("internal: a borrowed analysis: {e}"));
        for b in std::mem::take(&mut self.borrowed) {
            let mut analyzer = b.analyzer;
            let mut back = false;
            for f in &mut self.feeds {
                match f.return_analyzer(analyzer, b.fed) {
                    Ok(r) => {
                        r.map_err(lost)?;
                        back = true;
                        break;
                    }
                    Err(a) => analyzer = a,
                }
            }
            if !back {
                return Err(lost("no deliverable to go back to".into()));
            }
        }
        Ok(())
    }

    /// The loudness meter of a deliverable made from output `output` whose samples are the
    /// output's as they come, each as its file reads it back (no conversion, safety limiter,
    /// dither or lead silence), lent for its first `frames` frames to be fed elsewhere, with
    /// the format of its file; `None` when there is no such deliverable.
    /// [`Self::return_loudness`] gives it back.
    pub fn lend_loudness(
        &mut self,
        output: usize,
        frames: u64,
    ) -> Option<(
        crate::analysis::meters::LoudnessMeter,
        crate::io::wav::WavFormat,
    )> {
        self.feeds
            .iter_mut()
            .filter(|f| f.output_index == output)
            .find_map(|f| f.lend_loudness(frames))
    }

    /// Gives back the meter [`Self::lend_loudness`] lent, fed the frames lent: an error when no
    /// deliverable lent one, or the meter was not fed exactly those frames.
    pub fn return_loudness(
        &mut self,
        mut meter: crate::analysis::meters::LoudnessMeter,
    ) -> Result<(), RenderError> {
        for f in &mut self.feeds {
            match f.return_loudness(meter) {
                Ok(r) => {
                    return r.map_err(|e| {
                        RenderError::Invalid(format!("internal: a deliverable's loudness: {e}"))
                    })
                }
                Err(m) => meter = m,
            }
        }
        Err(RenderError::Invalid(
            "internal: a lent loudness meter has no deliverable to go back to".into(),
        ))
    }

    /// The feeds: an output at one rate and the deliverables made from it.
    pub fn feeds(&self) -> usize {
        self.feeds.len()
    }

    /// The work of these deliverables, roughly ([`Feed::weight`]).
    pub fn weight(&self) -> f64 {
        self.feeds.iter().map(Feed::weight).sum()
    }

    /// Whether any deliverable is made from output `output`.
    pub fn uses(&self, output: usize) -> bool {
        self.feeds.iter().any(|f| f.output_index == output)
    }

    /// The deliverables in up to `parts` parts of about the same work (whole feeds: an output
    /// at a rate converted and everything made from it; at the session rate, each stream on its
    /// own), for threads of their own; none empty.
    pub fn split(self, parts: usize) -> Vec<Deliveries> {
        let mut feeds: Vec<Feed> = if parts > 1 {
            self.feeds.into_iter().flat_map(Feed::per_stream).collect()
        } else {
            self.feeds
        };
        feeds.sort_by(|a, b| b.weight().total_cmp(&a.weight()));
        let mut out: Vec<(f64, Deliveries)> = (0..parts.clamp(1, feeds.len().max(1)))
            .map(|_| (0.0, Deliveries::default()))
            .collect();
        for f in feeds {
            let lightest = out
                .iter_mut()
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .expect("at least one part");
            lightest.0 += f.weight();
            lightest.1.count += f.files();
            lightest.1.feeds.push(f);
        }
        out.into_iter()
            .map(|(_, d)| d)
            .filter(|d| !d.feeds.is_empty())
            .collect()
    }

    /// The parts of [`Deliveries::split`] together again.
    pub fn join(parts: Vec<Deliveries>) -> Deliveries {
        let mut all = Deliveries::default();
        for p in parts {
            all.count += p.count;
            all.feeds.extend(p.feeds);
            all.borrowed.extend(p.borrowed);
        }
        all
    }

    /// Completes every file, each feed's on up to `threads` threads ([`crate::pool`]; a
    /// feed's first error in recipe order wins), in recipe order; a lossy deliverable's PCM is
    /// still to encode. Completing commits: the file takes the last render's file's place
    /// ([`crate::io::atomic::AtomicFile::commit`]: exchanged, not renamed over it, which on
    /// ext4 first started the new file's write-back: 0.07 and 0.09 s for M's two files).
    fn finish_files(self, threads: usize) -> Result<Vec<Finished>, RenderError> {
        let mut feeds = self.feeds;
        feeds.sort_by_key(Feed::first_index);
        let jobs: Vec<std::sync::Mutex<Option<Feed>>> = feeds
            .into_iter()
            .map(|f| std::sync::Mutex::new(Some(f)))
            .collect();
        let finished = crate::pool::try_run(threads.max(1), jobs.len(), |i| {
            jobs[i]
                .lock()
                .map_err(|_| RenderError::Invalid("a deliverable's worker panicked".into()))?
                .take()
                .expect("each job runs once")
                .finish()
        })?;
        let mut done: Vec<Finished> = finished.into_iter().flatten().collect();
        done.sort_by_key(|f| f.index);
        Ok(done)
    }
}

/// Prepares every deliverable of `session` (recipe order) from the outputs of `schedule`;
/// `analyse`: measure every file's samples for the report.
pub(crate) fn open_all(
    session: &Session,
    schedule: &Schedule,
    sample_rate: u32,
    out_dir: &Path,
    analyse: bool,
) -> Result<Deliveries, RenderError> {
    let protected = protected_inputs(session);
    let block = schedule.max_block().max(1024);
    let mut all = Deliveries::default();
    for (i, d) in session.deliverables.iter().enumerate() {
        let plan = file::Plan::new(d, session, schedule, sample_rate, out_dir, &protected)?;
        let out = plan.create_file(&protected)?;
        let feed =
            match all.feeds.iter().position(|f| {
                f.output_index == plan.output_index && f.sample_rate == plan.sample_rate
            }) {
                Some(f) => f,
                None => {
                    all.feeds.push(Feed::new(
                        plan.output_index,
                        plan.channels,
                        sample_rate,
                        plan.sample_rate,
                    )?);
                    all.feeds.len() - 1
                }
            };
        all.feeds[feed].attach(i, plan, out, analyse, block)?;
        all.count += 1;
    }
    Ok(all)
}

/// Completes every deliverable, in order.
pub(crate) fn finish_all(d: Deliveries) -> Result<Vec<DeliveredFile>, RenderError> {
    Ok(finish_each(d, 1, |_| Ok(()))?
        .into_iter()
        .map(|(f, ())| f)
        .collect())
}

/// Completes every deliverable and runs `then` on each once its file is committed (a lossy
/// one: encoded), each a job on up to `threads` threads ([`crate::pool`]). Results in recipe
/// order; the first error (in recipe order) wins, and deliverables not yet started are dropped,
/// which removes their temporary files.
pub(crate) fn finish_each<T: Send>(
    d: Deliveries,
    threads: usize,
    then: impl Fn(&DeliveredFile) -> Result<T, RenderError> + Sync,
) -> Result<Vec<(DeliveredFile, T)>, RenderError> {
    let jobs: Vec<std::sync::Mutex<Option<Finished>>> = d
        .finish_files(threads)?
        .into_iter()
        .map(|f| std::sync::Mutex::new(Some(f)))
        .collect();
    crate::pool::try_run(threads.max(1), jobs.len(), |i| {
        let done = jobs[i]
            .lock()
            .map_err(|_| RenderError::Invalid("a deliverable's worker panicked".into()))?
            .take()
            .expect("each job runs once");
        let mut file = done.file;
        if let Some((job, pcm)) = done.lossy {
            job.encode(pcm, &mut file)?;
        }
        let t = then(&file)?;
        Ok((file, t))
    })
}

/// A lossy file left over its ceiling (only with `codec_safe = "off"`: the solve never leaves
/// one), said as a warning.
fn codec_warning(f: &DeliveredFile) -> Option<String> {
    let (lossy, ceiling) = (f.lossy.as_ref()?, f.ceiling_dbtp?);
    (lossy.codec_true_peak_dbtp > ceiling).then(|| {
        format!(
            "{}: the decoded {} peaks at {:.2} dBTP, over its ceiling of {ceiling:.2} dBTP \
             (codec_safe = \"{}\")",
            f.wav.path.display(),
            lossy.codec,
            lossy.codec_true_peak_dbtp,
            lossy.codec_safe
        )
    })
}

/// The deliver stage: every deliverable the run (or target) stage wrote is completed and
/// committed to its file (a lossy one encoded); with a report, each is described from the
/// measurement of its samples and hashed: on two threads or more right after it is complete
/// (see [`super::report::analyse_deliverable`]), beside the others on the render's threads; on
/// one, once all are, hashed together ([`super::report::analyse_deliverables`]).
pub(super) fn finish(ctx: &mut RenderContext<'_>) -> Result<(), RenderError> {
    let analyse = ctx.meters.is_some();
    let each = analyse && ctx.opts.threads > 1;
    let out_dir = ctx.opts.out_dir.clone();
    let done = finish_each(std::mem::take(&mut ctx.sinks), ctx.opts.threads, |f| {
        Ok(if each {
            Some(super::report::analyse_deliverable(f, &out_dir)?)
        } else {
            None
        })
    })?;
    let (files, analyses): (Vec<_>, Vec<_>) = done.into_iter().unzip();
    ctx.result
        .warnings
        .extend(files.iter().filter_map(codec_warning));
    ctx.analyses = if analyse && !each {
        super::report::analyse_deliverables(&files, &out_dir)?
    } else {
        analyses.into_iter().flatten().collect()
    };
    ctx.result.files = files;
    Ok(())
}
