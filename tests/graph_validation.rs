//! Every validation error of the graph layer, each with the nodes it names.

use stemgraph::dsp::{Port, ProcessorConfig};
use stemgraph::graph::{compile, CompileOptions, GraphError, GraphSpec, NodeKind};

fn try_compile(g: &GraphSpec) -> Result<(), GraphError> {
    compile(g, CompileOptions::new(48_000.0, 256)).map(|_| ())
}

fn base() -> GraphSpec {
    let mut g = GraphSpec::new();
    g.source("drums", 0)
        .source("vocals", 1)
        .bus("master")
        .output("main");
    g.connect("drums", "master")
        .connect("vocals", "master")
        .connect("master", "main");
    g
}

#[test]
fn a_valid_graph_compiles() {
    try_compile(&base()).unwrap();
}

#[test]
fn cycle_names_its_nodes() {
    let mut g = base();
    g.processor("a", "gain", ProcessorConfig::new())
        .processor("b", "gain", ProcessorConfig::new())
        .bus("loop");
    g.connect("master", "a")
        .connect("a", "loop")
        .connect("loop", "b")
        .connect("b", "a");
    let err = try_compile(&g).unwrap_err();
    match &err {
        GraphError::Cycle { nodes, .. } => {
            let mut sorted = nodes.clone();
            sorted.sort();
            assert_eq!(sorted, vec!["a", "b", "loop"]);
        }
        other => panic!("expected a cycle, got {other}"),
    }
    let text = err.to_string();
    assert!(text.contains("`a` → `loop` → `b` → `a`"), "{text}");
}

#[test]
fn self_loop_is_a_cycle() {
    let mut g = base();
    g.bus("fx");
    g.connect("master", "fx").connect("fx", "fx");
    assert!(matches!(try_compile(&g), Err(GraphError::Cycle { .. })));
}

#[test]
fn unknown_node_suggests_the_closest() {
    let mut g = base();
    g.connect("vocal", "master");
    match try_compile(&g).unwrap_err() {
        GraphError::UnknownNode { id, suggestion, .. } => {
            assert_eq!(id, "vocal");
            assert_eq!(suggestion.as_deref(), Some("vocals"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn duplicate_node_and_connection() {
    let mut g = base();
    g.bus("master");
    assert!(
        matches!(try_compile(&g), Err(GraphError::DuplicateNode { ref id, .. }) if id == "master")
    );
    let mut g = base();
    g.connect("drums", "master");
    assert!(matches!(
        try_compile(&g),
        Err(GraphError::DuplicateConnection { ref from, ref to, .. }) if from == "drums" && to == "master"
    ));
}

#[test]
fn dangling_inputs() {
    let mut g = base();
    g.processor("lonely", "gain", ProcessorConfig::new())
        .output("second");
    g.connect("lonely", "second");
    assert!(
        matches!(try_compile(&g), Err(GraphError::DanglingInput { ref id, .. }) if id == "lonely")
    );
    let mut g = base();
    g.bus("empty").output("other");
    g.connect("empty", "other");
    assert!(
        matches!(try_compile(&g), Err(GraphError::DanglingInput { ref id, .. }) if id == "empty")
    );
}

#[test]
fn channel_mismatch() {
    let mut g = base();
    g.node(
        "mono_vox",
        NodeKind::Source {
            input: 2,
            channels: 1,
            config: ProcessorConfig::new(),
        },
    );
    g.connect("mono_vox", "master");
    match try_compile(&g).unwrap_err() {
        GraphError::ChannelMismatch {
            from,
            to,
            expected,
            found,
            ..
        } => {
            assert_eq!(
                (from.as_str(), to.as_str(), expected, found),
                ("mono_vox", "master", 2, 1)
            );
        }
        other => panic!("{other}"),
    }
    // A pan turns the mono stem into stereo: then it fits.
    let mut g = base();
    g.node(
        "mono_vox",
        NodeKind::Source {
            input: 2,
            channels: 1,
            config: ProcessorConfig::new(),
        },
    );
    g.processor("mono_vox.pan", "pan", ProcessorConfig::new());
    g.connect("mono_vox", "mono_vox.pan")
        .connect("mono_vox.pan", "master");
    try_compile(&g).unwrap();
}

#[test]
fn bad_connections() {
    let mut g = base();
    g.connect("master", "drums");
    assert!(matches!(
        try_compile(&g),
        Err(GraphError::BadConnection { .. })
    ));
    let mut g = base();
    g.processor("g", "gain", ProcessorConfig::new());
    g.connect("master", "g")
        .connect_port("drums", "g", Port::Key, 0.0);
    let err = try_compile(&g).unwrap_err();
    assert!(err.to_string().contains("no side-chain"), "{err}");
    let mut g = base();
    g.processor("g", "gain", ProcessorConfig::new())
        .output("o2");
    g.connect_port("drums", "g", Port::Main, -3.0)
        .connect("g", "o2");
    assert!(matches!(
        try_compile(&g),
        Err(GraphError::BadConnection { .. })
    ));
}

#[test]
fn too_many_inputs_on_a_processor() {
    let mut g = base();
    g.processor("g", "gain", ProcessorConfig::new())
        .output("o2");
    g.connect("drums", "g")
        .connect("vocals", "g")
        .connect("g", "o2");
    assert!(matches!(
        try_compile(&g),
        Err(GraphError::TooManyInputs { count: 2, .. })
    ));
}

#[test]
fn unknown_processor_option_and_range() {
    let mut g = base();
    g.processor("g", "gian", ProcessorConfig::new());
    g.connect("master", "g");
    let err = try_compile(&g).unwrap_err().to_string();
    assert!(
        err.contains("unknown processor kind `gian`") && err.contains("`gain`"),
        "{err}"
    );

    let mut g = base();
    g.processor("g", "gain", ProcessorConfig::new().num("gain_bd", 1.0))
        .output("o2");
    g.connect("master", "g").connect("g", "o2");
    let err = try_compile(&g).unwrap_err().to_string();
    assert!(
        err.contains("no option `gain_bd`") && err.contains("`gain_db`"),
        "{err}"
    );

    let mut g = base();
    g.processor("g", "gain", ProcessorConfig::new().num("gain_db", 99.0))
        .output("o2");
    g.connect("master", "g").connect("g", "o2");
    let err = try_compile(&g).unwrap_err().to_string();
    assert!(
        err.contains("out of range") && err.contains("-120") && err.contains("36"),
        "{err}"
    );
}

#[test]
fn no_output() {
    let mut g = GraphSpec::new();
    g.source("a", 0);
    assert!(matches!(try_compile(&g), Err(GraphError::NoOutput)));
}

#[test]
fn unreachable_nodes_are_left_out_with_a_warning() {
    let mut g = base();
    g.source("unused", 2);
    let compiled = compile(&g, CompileOptions::new(48_000.0, 64)).unwrap();
    assert!(
        compiled.warnings.iter().any(|w| w.contains("`unused`")),
        "{:?}",
        compiled.warnings
    );
}

#[test]
fn unknown_automation_parameter_suggests() {
    use stemgraph::automation::{Breakpoint, Curve, Shape};
    use stemgraph::graph::AutomationSpec;
    let mut g = base();
    g.automation.push(AutomationSpec {
        param: "vocals.gain_bd".into(),
        curve: Curve::new(vec![Breakpoint {
            pos: 0,
            value: 0.0,
            shape: Shape::Linear,
        }])
        .unwrap(),
        origin: None,
    });
    match try_compile(&g).unwrap_err() {
        GraphError::UnknownParam { suggestion, .. } => {
            assert_eq!(suggestion.as_deref(), Some("vocals.gain_db"))
        }
        other => panic!("{other}"),
    }
}

#[test]
fn schedule_is_the_same_whatever_the_recipe_order() {
    let a = base();
    let mut b = GraphSpec::new();
    b.output("main")
        .bus("master")
        .source("vocals", 1)
        .source("drums", 0);
    b.connect("master", "main")
        .connect("vocals", "master")
        .connect("drums", "master");
    let ca = compile(&a, CompileOptions::new(48_000.0, 64)).unwrap();
    let cb = compile(&b, CompileOptions::new(48_000.0, 64)).unwrap();
    assert_eq!(ca.summary, cb.summary);
}
