//! The shape of the code, checked from its text: which top-level modules of `src/` may use which
//! (the import graph has no circle, and the audio side never reaches up to the control side), and
//! no function longer than 150 lines. Both read the sources with a small lexer that blanks out
//! comments and the contents of string and character literals, so a path or a brace inside a
//! string or a doc comment counts for nothing.
//!
//! The allowed arrows are stated here and in `docs/architecture.md`: the modules are in layers,
//! and a module may use only modules of the layers before its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's top-level modules, lowest first: a module may use (`use crate::x`, or a
/// `crate::x::…` path in code) only modules listed before it. The binary's `cli` sits above all
/// of them and is not part of the library.
const LAYERS: &[&str] = &[
    // Leaves: units and their parsing, "did you mean" suggestions.
    "units",
    "suggest",
    // A pool of worker threads for independent jobs (songs, deliverables).
    "pool",
    // Curves as data.
    "automation",
    // The audio side: processors, then the engine that runs schedules.
    "dsp",
    "engine",
    // The control side, bottom up.
    "graph",
    // Running a graph in a host's own audio callback (builder, runtime, handle).
    "embed",
    // What a song says about itself (album, track, ISRC, UPC, …) and its tags.
    "metadata",
    "io",
    // The demo song's synthesizer (it uses the processors' filter coefficients) and its files
    // (written by `io`'s WAV writer).
    "demo",
    "session",
    "analysis",
    // Platforms: presets and loudness normalization previews.
    "delivery",
    "render",
    "album",
    "script",
    // Reference matching (`stemgraph match`): renders, measures, fits, writes override files.
    "matching",
    "live",
];

/// Arrows the issue names explicitly: the audio side (`engine/`, `dsp/`) never uses these. The
/// layers above already forbid them; this list keeps them forbidden if the layers are reordered.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("engine", &["graph", "render", "script", "live", "analysis"]),
    ("dsp", &["graph", "render", "script", "live", "analysis"]),
];

/// The longest a function body may be, in lines of code (blank and comment-only lines do not
/// count, as in clippy's `too_many_lines`).
const MAX_FN_LINES: usize = 150;

#[test]
fn no_module_uses_a_module_of_a_layer_above_it() {
    let graph = import_graph(&src_dir());
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong = Vec::new();
    for (from, tos) in &graph {
        let Some(rf) = rank(from) else {
            wrong.push(format!(
                "`{from}` is not in LAYERS: place it there and in docs/architecture.md"
            ));
            continue;
        };
        for (to, sites) in tos {
            if rank(to).is_some_and(|rt| rt >= rf) {
                wrong.push(format!("{from} → {to} ({})", sites.join(", ")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows against the layers (a module may use only those listed before it in LAYERS):\n{}\n\nthe whole graph:\n{}",
        wrong.join("\n"),
        describe(&graph)
    );
}

#[test]
fn the_audio_side_uses_nothing_of_the_control_side() {
    let graph = import_graph(&src_dir());
    let mut wrong = Vec::new();
    for (from, banned) in FORBIDDEN {
        for to in *banned {
            if let Some(sites) = graph.get(*from).and_then(|t| t.get(*to)) {
                wrong.push(format!("{from} → {to} ({})", sites.join(", ")));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_two_modules_use_each_other() {
    let graph = import_graph(&src_dir());
    let mut wrong = Vec::new();
    for (a, tos) in &graph {
        for (b, sites) in tos {
            if a < b {
                if let Some(back) = graph.get(b).and_then(|t| t.get(a)) {
                    wrong.push(format!(
                        "{a} ⇄ {b}: {} and {}",
                        sites.join(", "),
                        back.join(", ")
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_layers_match_the_modules_in_src() {
    let mut modules: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(src_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() || path.extension().is_some_and(|e| e == "rs") {
            modules.insert(name);
        }
    }
    for skip in ["lib", "main", "cli"] {
        modules.remove(skip);
    }
    let layers: BTreeSet<String> = LAYERS.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        modules, layers,
        "LAYERS must name every top-level module of src/"
    );
}

#[test]
fn no_function_is_longer_than_150_lines() {
    let mut long = Vec::new();
    for file in rust_files(&src_dir()) {
        let text = std::fs::read_to_string(&file).unwrap();
        for f in functions(&text) {
            if f.lines > MAX_FN_LINES {
                long.push(format!(
                    "{}:{} fn {}: {} lines",
                    rel(&file),
                    f.line,
                    f.name,
                    f.lines
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines of code (split them along their steps):\n{}",
        long.join("\n")
    );
}

// The checks above are only as good as the parsing: these run it on known text.

#[test]
fn the_lexer_ignores_comments_strings_and_chars() {
    let src = "use crate::a::X; // crate::b\n/* crate::c /* nested */ crate::d */\nlet s = \"crate::e {\"; let r = r#\"crate::f\"#;\nlet c = '{'; fn g<'a>(x: &'a str) { crate::h::y() }\n";
    let code = blank(src);
    assert_eq!(code.lines().count(), src.lines().count(), "lines are kept");
    let found: Vec<_> = crate_paths(&code).into_iter().map(|(m, _)| m).collect();
    assert_eq!(found, ["a", "h"]);
}

#[test]
fn grouped_imports_count_every_module() {
    let code =
        blank("use crate::{\n    dsp::Processor,\n    engine::{Schedule, Tap},\n    units,\n};\n");
    let found: BTreeSet<_> = crate_paths(&code).into_iter().map(|(m, _)| m).collect();
    assert_eq!(
        found,
        ["dsp", "engine", "units"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

#[test]
fn function_lengths_count_code_lines_only() {
    let body: String = (0..151).map(|i| format!("    let x{i} = {i};\n")).collect();
    let src = format!(
        "/// doc\npub fn long() {{\n{body}}}\n\nfn short(a: [u8; 2]) -> u8 {{\n    // a comment\n\n    let s = \"}}\";\n    a[0]\n}}\ntrait T {{ fn decl(&self); fn dflt(&self) {{}} }}\n"
    );
    let fns = functions(&src);
    let names: Vec<_> = fns.iter().map(|f| (f.name.as_str(), f.lines)).collect();
    // `long`: its 151 statements and the closing brace; `short`: the braces' lines and two
    // lines of code; the trait's declaration has no body.
    assert_eq!(names, [("long", 153), ("short", 4), ("dflt", 1)]);
    assert_eq!(fns[0].line, 2);
}

// ---- reading the sources ----

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rel(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Module → module it uses → where (file:line), for the library's top-level modules (`main.rs`
/// and `cli/` belong to the binary, whose `crate` is another crate).
type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn import_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for file in rust_files(src) {
        let inner = file.strip_prefix(src).unwrap();
        let top = inner
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs").to_string();
        if ["lib", "main", "cli"].contains(&module.as_str()) {
            continue;
        }
        let code = blank(&std::fs::read_to_string(&file).unwrap());
        let entry = graph.entry(module.clone()).or_default();
        for (to, line) in crate_paths(&code) {
            // `crate::name!` macros and items at the crate root are not modules.
            if to != module && LAYERS.contains(&to.as_str()) {
                entry
                    .entry(to)
                    .or_default()
                    .push(format!("{}:{line}", rel(&file)));
            }
        }
    }
    graph
}

fn describe(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(from, tos)| {
            let tos: Vec<&str> = tos.keys().map(String::as_str).collect();
            format!("  {from} → {}", tos.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segment after every `crate::` in `code` (and every path of a `crate::{…}` group),
/// with its line number (1-based).
fn crate_paths(code: &str) -> Vec<(String, usize)> {
    let b = code.as_bytes();
    let line_of = |i: usize| code[..i].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(k) = code[i..].find("crate::") {
        let at = i + k;
        i = at + "crate::".len();
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_') {
            continue; // `stemgraph_crate::`, not ours
        }
        if b.get(i) == Some(&b'{') {
            let end = matching(b, i).unwrap_or(b.len());
            for (name, pos) in group_heads(code, i + 1, end) {
                out.push((name, line_of(pos)));
            }
            i = end;
        } else {
            let name = ident_at(code, i);
            if !name.is_empty() {
                out.push((name, line_of(at)));
            }
        }
    }
    out
}

/// The first segment of each comma-separated path in the group `code[start..end]` (top level).
fn group_heads(code: &str, start: usize, end: usize) -> Vec<(String, usize)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut expect = true;
    let mut depth = 0;
    let mut i = start;
    while i < end {
        match b[i] {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b',' if depth == 0 => expect = true,
            c if expect && (c.is_ascii_alphabetic() || c == b'_') => {
                out.push((ident_at(code, i), i));
                expect = false;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn ident_at(code: &str, i: usize) -> String {
    code[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The index of the bracket closing the one at `open`.
fn matching(b: &[u8], open: usize) -> Option<usize> {
    let (o, c) = (b[open], if b[open] == b'{' { b'}' } else { b')' });
    let mut depth = 0usize;
    for (k, &x) in b.iter().enumerate().skip(open) {
        if x == o {
            depth += 1;
        } else if x == c {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// `src` with comments blanked to spaces and the contents of string and character literals
/// replaced by `s`, newlines kept: code stays where it was, and nothing in a comment or a
/// literal looks like code.
fn blank(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let keep_nl = |ch: char, fill: char| if ch == '\n' { '\n' } else { fill };
    while i < c.len() {
        let prev_ident = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    out.push(' ');
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        out.push_str("  ");
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        out.push_str("  ");
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        out.push(keep_nl(c[i], ' '));
                        i += 1;
                    }
                }
            }
            'r' if raw_start(&c, i).is_some() && (!prev_ident || byte_prefix(&c, i)) => {
                // r##"…"##
                let hashes = raw_start(&c, i).unwrap_or(0);
                let open = 1 + hashes + 1;
                out.extend(&c[i..i + open]);
                i += open;
                while i < c.len() {
                    if c[i] == '"' && (0..hashes).all(|h| c.get(i + 1 + h) == Some(&'#')) {
                        out.push('"');
                        out.extend(std::iter::repeat_n('#', hashes));
                        i += 1 + hashes;
                        break;
                    }
                    out.push(keep_nl(c[i], 's'));
                    i += 1;
                }
            }
            '"' => {
                out.push('"');
                i += 1;
                while i < c.len() && c[i] != '"' {
                    let skip = if c[i] == '\\' { 2 } else { 1 };
                    for k in 0..skip {
                        if let Some(&ch) = c.get(i + k) {
                            out.push(keep_nl(ch, 's'));
                        }
                    }
                    i += skip;
                }
                if i < c.len() {
                    out.push('"');
                    i += 1;
                }
            }
            '\'' => {
                // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
                let len = if c.get(i + 1) == Some(&'\\') {
                    (i + 2..c.len()).find(|&k| c[k] == '\'').map(|k| k - i + 1)
                } else if c.get(i + 2) == Some(&'\'') {
                    Some(3)
                } else {
                    None
                };
                match len {
                    Some(n) => {
                        out.push('\'');
                        out.extend(std::iter::repeat_n('s', n - 2));
                        out.push('\'');
                        i += n;
                    }
                    None => {
                        out.push('\'');
                        i += 1;
                    }
                }
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// Whether the `r` at `c[i]` follows the `b` of a raw byte string (`br"…"`).
fn byte_prefix(c: &[char], i: usize) -> bool {
    let ident = |x: char| x.is_alphanumeric() || x == '_';
    i >= 1 && c[i - 1] == 'b' && (i < 2 || !ident(c[i - 2]))
}

/// At `c[i] == 'r'`: the number of `#` of a raw string starting here.
fn raw_start(c: &[char], i: usize) -> Option<usize> {
    let hashes = c[i + 1..].iter().take_while(|&&x| x == '#').count();
    (c.get(i + 1 + hashes) == Some(&'"')).then_some(hashes)
}

/// A function with a body found in the text.
struct Function {
    name: String,
    /// The line of `fn` (1-based).
    line: usize,
    /// Lines of code from the body's `{` to its `}` (blank and comment-only lines not counted).
    lines: usize,
}

/// Every function with a body in `src` (nested ones too, each counted on its own).
fn functions(src: &str) -> Vec<Function> {
    let code = blank(src);
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(k) = code[i..].find("fn ") {
        let at = i + k;
        i = at + 3;
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_') {
            continue;
        }
        let name_at = i + code[i..].len() - code[i..].trim_start().len();
        let name = ident_at(&code, name_at);
        if name.is_empty() {
            continue;
        }
        // The body's `{`, or a `;` ending a declaration; brackets of the signature skipped.
        let mut depth = 0i32;
        let mut body = None;
        for (p, &x) in b.iter().enumerate().skip(name_at) {
            match x {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b';' if depth == 0 => break,
                b'{' if depth == 0 => {
                    body = Some(p);
                    break;
                }
                _ => {}
            }
        }
        let Some(open) = body else { continue };
        let Some(close) = matching(b, open) else {
            continue;
        };
        let first = code[..open].matches('\n').count();
        let last = code[..close].matches('\n').count();
        let lines = code
            .lines()
            .skip(first)
            .take(last - first + 1)
            .filter(|l| !l.trim().is_empty())
            .count();
        out.push(Function {
            name,
            line: code[..at].matches('\n').count() + 1,
            lines,
        });
    }
    out
}
