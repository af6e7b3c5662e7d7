//! The run stage: the full graph over the stems. Without a loudness target its outputs go
//! straight into the deliverables (latency trimmed, the tail measured and cut where it falls
//! silent, see [`super::tail`]); with one, what enters the master limiter is spilled for the
//! target stage ([`super::target`]).
//!
//! Also the render's passes in general: a [`Pass`] compiles a graph, runs it over streams on
//! the engine's offline runner ([`crate::engine::parallel`]) and leaves its deliverables open
//! for the deliver stage. The stems are the runner's [`BlockSource`]s.

use super::deliver::{self, DeliveredFile, Deliveries};
use super::inputs::{non_finite_warnings, stems_non_finite};
use super::report::{CollectedMeters, NodeTaps};
use super::sink_thread::SinkThread;
use super::tail::TailTrim;
use super::{target, RenderContext, RenderError, RenderOptions, RenderResult};
use crate::analysis::meters::LoudnessMeter;
use crate::dsp::{AudioMut, AudioRef};
use crate::engine::parallel::{self, BlockSource, RunSettings};
use crate::engine::Schedule;
use crate::graph::{compile, CompileOptions, GraphSpec};
use crate::io::decode::{DecodeError, NonFinite, StemStream};
use crate::session::Session;
use std::cell::Cell;

impl BlockSource for StemStream {
    type Error = DecodeError;

    fn read_into(&mut self, mut input: AudioMut<'_>, frames: usize) -> Result<(), DecodeError> {
        if input.channels() == 2 {
            let (l, r) = input.stereo_mut();
            self.read_block(&mut [l, r], frames)
        } else {
            self.read_block(&mut [input.channel_mut(0)], frames)
        }
    }
}

/// Runs the schedule over the whole song with `settings` (block, threads, interrupt, progress,
/// early stop; see [`crate::engine::parallel::runner`]), handing every output block
/// (latency-trimmed, with the tail) to `sink(output_index, song_position, block)`. The output is
/// the same, bit for bit, whatever the thread count.
pub fn run<F>(
    schedule: &mut Schedule,
    streams: &mut [StemStream],
    song_frames: u64,
    settings: RunSettings<'_, '_>,
    sink: F,
) -> Result<(), RenderError>
where
    F: FnMut(usize, u64, AudioRef<'_>) -> Result<(), RenderError>,
{
    parallel::run(schedule, streams, song_frames, settings, sink)
}

/// What runs after each block of a pass: the count of frames the pass's (main) schedule has
/// processed, kept in `done` (the report's gain-reduction statistics are per frame of the
/// pass), then the caller's progress.
pub(crate) fn after_each_block<'a>(
    done: &'a Cell<u64>,
    progress: &'a mut Option<Box<dyn FnMut(u64, u64)>>,
) -> impl FnMut(u64, u64) + 'a {
    move |d, total| {
        done.set(d);
        if let Some(p) = progress.as_mut() {
            p(d, total);
        }
    }
}

/// Where a pass's output blocks go: into the deliverables, or to the thread writing them.
enum Writer<'scope> {
    Direct(Deliveries),
    Thread(SinkThread<'scope>),
}

impl Writer<'_> {
    fn write(&mut self, o: usize, block: AudioRef<'_>) -> Result<(), RenderError> {
        match self {
            Writer::Direct(sinks) => sinks.write(o, block),
            Writer::Thread(t) => t.write(o, block),
        }
    }

    /// The deliverables, everything handed over written.
    fn finish(self) -> Result<Deliveries, RenderError> {
        match self {
            Writer::Direct(sinks) => Ok(sinks),
            Writer::Thread(t) => t.finish(),
        }
    }
}

/// What a pass also does with its outputs, beside the deliverables: each output block as the
/// schedule gives it (latency trimmed, before the tail is cut), and whether the pass must run
/// over every input frame instead of stopping where the tail falls silent.
pub(crate) struct Observe<'a> {
    /// Called with (output id, block) for every output block.
    pub each_block: &'a mut dyn FnMut(&str, AudioRef<'_>) -> Result<(), RenderError>,
    /// Run to the end of the inputs (an observer that records the whole stream).
    pub to_the_end: bool,
    /// A loudness meter of an output's blocks as `each_block` sees them, given back in place
    /// after the pass: with a report, and `to_the_end`, the report's tap on that output feeds
    /// it, K-weighted beside the tap's own meter (the same figures in less time).
    pub loudness: Option<(&'a str, &'a mut Option<LoudnessMeter>)>,
}

/// How a pass shares its work with a second thread (renders on two or more threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Staging {
    /// The full graph over the stems: the runner splits the stems' strips between two
    /// threads ([`crate::engine::parallel`]) and the deliverables are written on threads of
    /// their own ([`SinkThread`]).
    Graph,
    /// The tail chain over the spill (the limiter and what follows it), light beside its
    /// deliverables. When these are one feed per thread (an output at one rate and what is
    /// made from it), the pass runs on this thread and writes the lightest feed itself, and
    /// each other feed has a writer thread: threads of about the same work, one per core.
    /// Otherwise as [`Staging::Graph`]. (On workload M, two feeds: the tail chain split
    /// between two threads and a writer thread per feed were four threads sharing two cores,
    /// the 44.1 kHz feed, the longest, waiting its turn: the final pass took 0.55 s, 0.43 s
    /// this way.)
    Chain,
}

/// A graph run over its streams, its deliverables written but not yet finished.
pub(crate) struct Pass {
    /// The deliverables, in recipe order, to finish ([`deliver::finish_all`]).
    pub sinks: Deliveries,
    /// Latency trimmed from the outputs.
    pub latency: usize,
    /// Tail rendered after the song (measured: cut where it falls silent).
    pub tail: usize,
    /// The song's end, where the measured tail starts.
    pub song_end: u64,
    /// Stems whose streams muted non-finite samples.
    pub non_finite: Vec<(String, NonFinite)>,
    /// The compiler's warnings (and one per stem with non-finite samples).
    pub warnings: Vec<String>,
    /// The taps, with the node each observed, after the last block.
    pub taps: NodeTaps,
    /// The report's meters, when `opts.report` asked for them.
    pub meters: Option<CollectedMeters>,
}

impl Pass {
    /// Compiles `spec`, runs it over `streams` and writes the session's deliverables from its
    /// outputs. `input_frames` counts from the first frame of the streams (the song, or a spill
    /// holding the song and a tail); `song_end` is the song's own end, where the measured tail
    /// starts ([`super::tail`]). Uses (and gives back) the progress of `opts`, takes its taps.
    /// `observe` also sees every output block; `staging` says how the pass uses a second
    /// thread.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        session: &Session,
        spec: &GraphSpec,
        mut streams: Vec<StemStream>,
        input_frames: u64,
        sample_rate: u32,
        opts: &mut RenderOptions,
        song_end: u64,
        mut observe: Option<Observe<'_>>,
        staging: Staging,
    ) -> Result<Pass, RenderError> {
        let mut copts = CompileOptions::new(f64::from(sample_rate), opts.block_size);
        copts.taps = std::mem::take(&mut opts.taps);
        // The report's meters: taps on stems and outputs, gain reduction sampled per block.
        let mut collector =
            opts.report_collector(spec, f64::from(sample_rate), input_frames, &mut copts);
        let compiled = compile(spec, copts)?;
        let mut warnings = compiled.warnings;
        let mut schedule = compiled.schedule;
        if let Some(c) = collector.as_mut() {
            c.watch(&schedule);
        }
        let twinned = twin_loudness(
            &mut schedule,
            collector.as_ref(),
            &mut observe,
            input_frames,
        );
        let rate = f64::from(sample_rate);
        let channels: Vec<usize> = (0..schedule.output_count())
            .map(|o| schedule.output(o, 0).channels())
            .collect();
        let declared_tail = (input_frames + schedule.tail() as u64).saturating_sub(song_end);
        let mut trim = TailTrim::new(
            &session.tail,
            &session.edits,
            song_end,
            declared_tail,
            rate,
            &channels,
            opts.block_size,
        );
        let mut sinks =
            deliver::open_all(session, &schedule, sample_rate, &opts.out_dir, opts.report)?;
        // Without an observer's meter on the tap, a deliverable's loudness meter takes its place
        // when the deliverable holds the output's frames as they come.
        let as_they_come = declared_tail == 0 && session.edits == Default::default();
        let lent = !twinned
            && as_they_come
            && lend_deliverable_loudness(
                &mut schedule,
                collector.as_ref(),
                &mut sinks,
                input_frames,
            );
        let output_ids: Vec<String> = (0..schedule.output_count())
            .map(|o| schedule.output_slot(o).id.clone())
            .collect();
        // On two threads the deliverables are written on threads of their own while the pass
        // goes on (a light pass keeps a share, see Staging::Chain).
        let pipelined = opts.threads >= 2 && !sinks.is_empty();
        let keep_lightest = pipelined && staging == Staging::Chain && sinks.feeds() == opts.threads;
        let (runner_threads, writers) = if keep_lightest {
            (1, opts.threads - 1)
        } else {
            (opts.threads, opts.threads.min(super::sink_thread::WRITERS))
        };
        let max_channels = channels.iter().copied().max().unwrap_or(1);
        let mut user_progress = opts.progress.take();
        let frames_done = Cell::new(0);
        let (ran, sinks) = std::thread::scope(|scope| {
            let mut writer = if pipelined {
                Writer::Thread(SinkThread::spawn(
                    scope,
                    sinks,
                    writers,
                    keep_lightest,
                    // A deliverable's meter not lent to a tap may be lent to a writer.
                    (as_they_come && !lent).then_some(input_frames),
                    channels.len(),
                    max_channels,
                    opts.block_size,
                ))
            } else {
                Writer::Direct(sinks)
            };
            let mut write = |o: usize, block: AudioRef<'_>| -> Result<(), RenderError> {
                writer.write(o, block)
            };
            let mut after_block = after_each_block(&frames_done, &mut user_progress);
            let stop = Cell::new(false);
            let settings = RunSettings {
                block: opts.block_size,
                threads: runner_threads,
                interrupt: opts.interrupt.as_deref(),
                progress: Some(&mut after_block),
                stop: Some(&stop),
            };
            let ran = run(
                &mut schedule,
                &mut streams,
                input_frames,
                settings,
                |o, pos, block| {
                    let mut to_the_end = false;
                    if let Some(obs) = observe.as_mut() {
                        (obs.each_block)(&output_ids[o], block)?;
                        to_the_end = obs.to_the_end;
                        if let Some((id, Some(meter))) = obs.loudness.as_mut() {
                            if output_ids[o] == *id {
                                block.with_planes(|p| meter.push(p));
                            }
                        }
                    }
                    trim.push(o, pos, block, &mut write)?;
                    if trim.done() && !to_the_end {
                        stop.set(true);
                    }
                    Ok(())
                },
            )
            .and_then(|()| trim.finish(&mut write));
            (ran, writer.finish())
        });
        opts.progress = user_progress;
        // The writer's own error first: the pass only saw that it stopped.
        let mut sinks = sinks?;
        let tail = ran?;
        let mut taps = schedule.take_taps();
        if twinned {
            if let (Some(c), Some((_, slot))) = (
                collector.as_ref(),
                observe.as_mut().and_then(|o| o.loudness.as_mut()),
            ) {
                **slot = c.take_twin(&mut taps);
            }
        }
        if lent {
            let meter = collector.as_ref().and_then(|c| c.take_twin(&mut taps));
            sinks.return_loudness(meter.ok_or_else(|| {
                RenderError::Invalid("internal: a deliverable's loudness meter was lost".into())
            })?)?;
        }
        let meters = collector.map(|c| c.finish(&mut taps, frames_done.get()));
        let non_finite = stems_non_finite(session, &streams);
        warnings.extend(non_finite_warnings(&non_finite, rate));
        Ok(Pass {
            sinks,
            latency: schedule.latency(),
            tail: tail as usize,
            song_end,
            non_finite,
            warnings,
            taps,
            meters,
        })
    }

    /// Finishes the deliverables: the pass as a render's result (at `sample_rate`) and its
    /// report meters.
    pub(crate) fn finish(
        self,
        sample_rate: u32,
    ) -> Result<(RenderResult, Option<CollectedMeters>), RenderError> {
        let files: Vec<DeliveredFile> = deliver::finish_all(self.sinks)?;
        Ok((
            RenderResult {
                sample_rate,
                song_frames: self.song_end,
                latency: self.latency,
                tail: self.tail,
                files,
                warnings: self.warnings,
                seconds: 0.0,
                taps: self.taps,
                target: None,
                report: None,
                non_finite: self.non_finite,
                timings: Vec::new(),
            },
            self.meters,
        ))
    }
}

/// Hands the loudness meter of `observe` (if any, and the pass runs to the end) to the report's
/// tap on its output, to measure the frames the runner hands on from it (latency trimmed, the
/// song and the tail: `input_frames` of the inputs); whether it did.
fn twin_loudness(
    schedule: &mut Schedule,
    collector: Option<&super::report::ReportCollector>,
    observe: &mut Option<Observe<'_>>,
    input_frames: u64,
) -> bool {
    let (Some(c), Some(obs)) = (collector, observe.as_mut()) else {
        return false;
    };
    let Some((id, slot)) = obs.loudness.as_mut() else {
        return false;
    };
    let Some(o) = (0..schedule.output_count()).find(|&o| schedule.output_slot(o).id == *id) else {
        return false;
    };
    if !obs.to_the_end {
        return false;
    }
    let Some(meter) = slot.take() else {
        return false;
    };
    let from = schedule.output_slot(o).latency as u64;
    let to = from + input_frames + schedule.tail() as u64;
    match c.twin(schedule, id, meter, (from, to), None) {
        Ok(()) => true,
        Err(meter) => {
            **slot = Some(meter);
            false
        }
    }
}

/// Lends the loudness meter of a deliverable holding an output's frames as they come (each read
/// back as its file holds it: [`Deliveries::lend_loudness`]) to the report's tap on that output,
/// for the frames the runner hands on from it (latency trimmed: the `input_frames` of the
/// inputs, when nothing comes after them and nothing cuts them): the tap K-weights them beside
/// its own meter's frames, four channels in one pass, in the time the two stereo passes took
/// one. Whether it did; the meter goes back to the deliverable after the pass.
fn lend_deliverable_loudness(
    schedule: &mut Schedule,
    collector: Option<&super::report::ReportCollector>,
    sinks: &mut Deliveries,
    input_frames: u64,
) -> bool {
    let Some(c) = collector else {
        return false;
    };
    for o in 0..schedule.output_count() {
        let Some((meter, format)) = sinks.lend_loudness(o, input_frames) else {
            continue;
        };
        let slot = schedule.output_slot(o);
        let (id, from) = (slot.id.clone(), slot.latency as u64);
        match c.twin(
            schedule,
            &id,
            meter,
            (from, from + input_frames),
            Some(format),
        ) {
            Ok(()) => return true,
            // Nothing was measured yet: it goes back as it came.
            Err(meter) => {
                if sinks.return_loudness(meter).is_err() {
                    return false;
                }
            }
        }
    }
    false
}

/// The run stage: the full graph over the stems, into the deliverables, or, with a loudness
/// target, into the spill of the pre-limiter master (see [`target::spill`]).
pub(super) fn full_graph(ctx: &mut RenderContext<'_>) -> Result<(), RenderError> {
    if ctx.session.target_lufs.is_some() {
        return target::spill(ctx);
    }
    let streams = std::mem::take(&mut ctx.streams);
    let pass = Pass::run(
        ctx.session,
        &ctx.spec,
        streams,
        ctx.plan.song_frames,
        ctx.plan.sample_rate,
        &mut ctx.opts,
        ctx.plan.song_frames,
        None,
        Staging::Graph,
    )?;
    let r = &mut ctx.result;
    r.latency = pass.latency;
    r.tail = pass.tail;
    r.non_finite = pass.non_finite;
    r.warnings.extend(pass.warnings);
    r.taps = pass.taps;
    ctx.meters = pass.meters;
    ctx.sinks = pass.sinks;
    Ok(())
}
