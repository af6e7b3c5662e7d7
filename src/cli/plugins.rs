//! `stemgraph plugins [FILTER] [--json]`: the installed LV2 and CLAP plugins with their ports,
//! parameters and latency; `stemgraph plugin save-state RECIPE NODE [--out FILE]`: a plugin node's
//! state to a file beside the recipe.
//!
//! LV2 descriptions come from the plugins' metadata; the latency needs an instance, so every
//! plugin is instantiated and probed with an impulse in a child process (`stemgraph plugins
//! --probe-child`, reading URIs on stdin and answering a line each): a plugin that crashes or
//! hangs takes the child down, is listed as broken, and a new child goes on with the rest.
//! A CLAP bundle must be loaded (its code run) even to be described: each bundle is described
//! and probed in a child of its own (`stemgraph plugins --clap-child FILE`, answering JSON); a
//! bundle whose child crashes or hangs is listed as broken.

use super::CliError;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use stemgraph::dsp::plugin::host::{PluginDesc, PluginRef};
use stemgraph::dsp::plugin::{self, PluginNode};
use stemgraph::engine::RtKind;
use stemgraph::graph::{compile, CompileOptions};
use stemgraph::script::load_recipe;

/// How long one plugin may take to instantiate and answer the probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Arguments of `plugins`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Only plugins whose URI or name contains this (case-insensitive).
    filter: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Do not instantiate the plugins (no latency, no crash check): metadata only.
    #[arg(long)]
    no_probe: bool,
    /// Internal: probe the URIs read on stdin (the scan's child process).
    #[arg(long, hide = true)]
    probe_child: bool,
    /// Internal: describe (and probe) the plugins of one CLAP bundle, as JSON.
    #[arg(long, hide = true)]
    clap_child: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Saves the state of a plugin node, as the recipe sets it up, to a file (default
    /// `<node>.state.ttl` (LV2) or `<node>.state.hex` (CLAP) beside the recipe);
    /// `state = "<file>"` in the node restores it.
    SaveState {
        /// The recipe.
        recipe: PathBuf,
        /// The plugin node's id.
        node: String,
        /// Where to write it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a parameter before saving: `--set comp.threshold=-12` (repeatable).
        #[arg(long = "set")]
        set: Vec<String>,
    },
}

/// One plugin as listed.
#[derive(Serialize, Deserialize)]
struct Listed {
    #[serde(flatten)]
    desc: PluginDesc,
    /// `ok`, `broken` (the child crashed or timed out on it) or `not probed`.
    status: String,
    /// Why it is broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Latency the plugin reports, in samples at 48 kHz.
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<usize>,
    /// Where its impulse response peaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    measured_latency: Option<usize>,
    /// How long its impulse response rings after the peak.
    #[serde(skip_serializing_if = "Option::is_none")]
    tail: Option<usize>,
}

/// Runs `plugins`.
pub fn run(args: Args) -> Result<(), CliError> {
    if let Some(Action::SaveState {
        recipe,
        node,
        out,
        set,
    }) = args.action
    {
        return save_state(recipe, &node, out, &set);
    }
    if args.probe_child {
        return probe_child();
    }
    if let Some(file) = args.clap_child {
        return clap_child(file, !args.no_probe);
    }
    let filter = args.filter.as_deref().map(str::to_lowercase);
    let wanted = |d: &PluginDesc| {
        filter
            .as_ref()
            .is_none_or(|f| d.uri.to_lowercase().contains(f) || d.name.to_lowercase().contains(f))
    };
    let descs: Vec<PluginDesc> = plugin::installed()?.into_iter().filter(wanted).collect();
    let mut listed = if args.no_probe {
        descs
            .into_iter()
            .map(|d| not_probed(d, "not probed"))
            .collect()
    } else {
        scan(descs)?
    };
    for file in plugin::clap_bundles()? {
        listed.extend(
            scan_clap_bundle(&file, args.no_probe)?
                .into_iter()
                .filter(|l| wanted(&l.desc)),
        );
    }
    listed.sort_by(|a, b| a.desc.uri.cmp(&b.desc.uri));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
    } else {
        print_text(&listed);
    }
    Ok(())
}

fn not_probed(desc: PluginDesc, status: &str) -> Listed {
    Listed {
        desc,
        status: status.into(),
        error: None,
        latency: None,
        measured_latency: None,
        tail: None,
    }
}

/// The child: for each URI on stdin, `start` then the probe's answer, flushed line by line.
fn probe_child() -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    for uri in std::io::stdin().lock().lines() {
        let uri = uri?;
        writeln!(out, "start\t{uri}")?;
        out.flush()?;
        match plugin::probe_installed(&PluginRef::Lv2(uri.clone()), 48_000.0, 1024) {
            Ok(p) => writeln!(
                out,
                "ok\t{}\t{}\t{}",
                p.reported,
                p.measured.map_or("-".into(), |m| m.to_string()),
                p.tail
            )?,
            Err(e) => writeln!(out, "error\t{}", e.replace(['\n', '\t'], " "))?,
        }
        out.flush()?;
    }
    Ok(())
}

/// Probes every plugin in child processes, a new child after each crash or hang.
fn scan(descs: Vec<PluginDesc>) -> Result<Vec<Listed>, CliError> {
    let mut listed: Vec<Listed> = Vec::with_capacity(descs.len());
    let mut rest = descs.into_iter().peekable();
    while rest.peek().is_some() {
        let batch: Vec<PluginDesc> = rest.by_ref().collect();
        let (done, left) = scan_in_child(batch)?;
        listed.extend(done);
        rest = left.into_iter().peekable();
    }
    listed.sort_by(|a, b| a.desc.uri.cmp(&b.desc.uri));
    Ok(listed)
}

/// One child over `batch`: the plugins it answered (and the one it died on), and those left.
fn scan_in_child(batch: Vec<PluginDesc>) -> Result<(Vec<Listed>, Vec<PluginDesc>), CliError> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["plugins", "--probe-child"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("no stdin for the scan")?;
    let stdout = child.stdout.take().ok_or("no stdout from the scan")?;
    let uris: String = batch.iter().map(|d| format!("{}\n", d.uri)).collect();
    std::thread::spawn(move || {
        let _ = stdin.write_all(uris.as_bytes());
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut done = Vec::new();
    let mut batch = batch.into_iter();
    while let Some(desc) = batch.next() {
        let answer = recv(&rx).and_then(|start| {
            (start == format!("start\t{}", desc.uri))
                .then(|| recv(&rx))
                .flatten()
        });
        let Some(answer) = answer else {
            let _ = child.kill();
            let status = child.wait()?;
            let mut l = not_probed(desc, "broken");
            l.error = Some(format!(
                "the plugin crashed or hung while it was instantiated and probed ({status})"
            ));
            done.push(l);
            return Ok((done, batch.collect()));
        };
        done.push(parse_answer(desc, &answer));
    }
    let _ = child.wait();
    Ok((done, Vec::new()))
}

/// A description standing for a plugin (or bundle) that could not be described.
fn undescribed(uri: &str, path: &std::path::Path) -> PluginDesc {
    PluginDesc {
        format: "clap".into(),
        uri: uri.into(),
        path: Some(path.display().to_string()),
        name: String::new(),
        inputs: Vec::new(),
        outputs: 0,
        controls: Vec::new(),
        reports_latency: false,
        has_state: false,
    }
}

/// The child for one CLAP bundle: each plugin described (and probed), as a JSON list.
fn clap_child(file: PathBuf, probe: bool) -> Result<(), CliError> {
    let mut listed = Vec::new();
    for id in plugin::clap_ids(&file)? {
        let source = PluginRef::Clap {
            id: id.clone(),
            path: Some(file.clone()),
        };
        let desc = match plugin::find(&source) {
            Ok(d) => d,
            Err(e) => {
                let mut l = not_probed(undescribed(&id, &file), "broken");
                l.error = Some(e);
                listed.push(l);
                continue;
            }
        };
        if !probe {
            listed.push(not_probed(desc, "not probed"));
            continue;
        }
        listed.push(match plugin::probe_installed(&source, 48_000.0, 1024) {
            Ok(p) => Listed {
                latency: Some(p.reported),
                measured_latency: p.measured,
                tail: Some(p.tail),
                ..not_probed(desc, "ok")
            },
            Err(e) => Listed {
                error: Some(e),
                ..not_probed(desc, "broken")
            },
        });
    }
    println!("{}", serde_json::to_string(&listed)?);
    Ok(())
}

/// Describes a CLAP bundle's plugins in a child process; a crash or hang lists the bundle as
/// broken.
fn scan_clap_bundle(file: &std::path::Path, no_probe: bool) -> Result<Vec<Listed>, CliError> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("plugins").arg("--clap-child").arg(file);
    if no_probe {
        cmd.arg("--no-probe");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = child.stdout.take().ok_or("no stdout from the scan")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        let _ = tx.send(text);
    });
    let text = rx.recv_timeout(PROBE_TIMEOUT * 4).ok();
    if text.is_none() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    match text.and_then(|t| serde_json::from_str::<Vec<Listed>>(&t).ok()) {
        Some(listed) if status.success() => Ok(listed),
        _ => {
            let mut l = not_probed(undescribed(&file.display().to_string(), file), "broken");
            l.error = Some(format!(
                "the CLAP bundle crashed, hung or failed while it was loaded and probed ({status})"
            ));
            Ok(vec![l])
        }
    }
}

fn recv(rx: &mpsc::Receiver<std::io::Result<String>>) -> Option<String> {
    rx.recv_timeout(PROBE_TIMEOUT).ok()?.ok()
}

fn parse_answer(desc: PluginDesc, answer: &str) -> Listed {
    let mut fields = answer.split('\t');
    match fields.next() {
        Some("ok") => {
            let mut num = || fields.next().and_then(|f| f.parse::<usize>().ok());
            let (latency, measured, tail) = (num(), num(), num());
            Listed {
                latency,
                measured_latency: measured,
                tail,
                ..not_probed(desc, "ok")
            }
        }
        _ => Listed {
            error: Some(fields.collect::<Vec<_>>().join(" ")),
            ..not_probed(desc, "broken")
        },
    }
}

fn print_text(listed: &[Listed]) {
    for l in listed {
        let d = &l.desc;
        let key = match d.key_inputs() {
            0 => String::new(),
            k => format!(" + {k} key"),
        };
        let latency = match (l.latency, l.measured_latency) {
            (Some(r), Some(m)) if r != m => format!(", latency {r} (measured {m})"),
            (Some(r), _) => format!(", latency {r}"),
            _ => String::new(),
        };
        let format = match &d.path {
            Some(p) => format!("{}, {p}", d.format),
            None => d.format.clone(),
        };
        println!(
            "{} ({format}) — {}: {}{key} in, {} out, {} parameters{latency}{}",
            d.uri,
            d.name,
            d.main_inputs(),
            d.outputs,
            d.controls.len(),
            if l.status == "broken" {
                format!(" — BROKEN: {}", l.error.as_deref().unwrap_or(""))
            } else {
                String::new()
            }
        );
        for c in &d.controls {
            println!(
                "    {:<24} {} … {} (default {}) {}",
                c.symbol, c.min, c.max, c.default, c.name
            );
        }
    }
    println!("{} plugin(s)", listed.len());
}

/// `plugin save-state`: compiles the recipe and writes the node's state.
fn save_state(
    recipe: PathBuf,
    node: &str,
    out: Option<PathBuf>,
    set: &[String],
) -> Result<(), CliError> {
    let mut session = load_recipe(&recipe)?;
    for s in set {
        session.apply_override(s)?;
    }
    let rate = f64::from(session.sample_rate.unwrap_or(48_000));
    let compiled = compile(&session.graph_at(rate), CompileOptions::new(rate, 1024))?;
    let found = compiled.schedule.nodes().iter().find(|n| n.id == node);
    let Some(found) = found else {
        return Err(format!("the recipe has no node `{node}`").into());
    };
    let p = match &found.kind {
        RtKind::Processor(p) => p.as_any().downcast_ref::<PluginNode>(),
        RtKind::Bus => None,
    };
    let p = p.ok_or_else(|| format!("`{node}` is not a plugin node"))?;
    let text = p.save_state()?;
    let ext = if p.desc().format == "clap" {
        "hex"
    } else {
        "ttl"
    };
    let path = out.unwrap_or_else(|| session.base_dir().join(format!("{node}.state.{ext}")));
    plugin::state::write(&path, &text)?;
    println!(
        "{}: state of `{node}` ({}), sha256 {}",
        path.display(),
        p.desc().uri,
        plugin::state::sha256_hex(text.as_bytes())
    );
    Ok(())
}
