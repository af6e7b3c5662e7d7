//! Section-aware matching: a recipe that declares sections gets per-section values as step
//! automation at the sections' starts, the loudest section matched to the reference's loudest
//! part. The reference: the demo song with the bass 5 dB up in the chorus only.
mod common;
mod matching;

use matching::*;

#[test]
fn the_chorus_is_matched_to_the_loudest_part_and_emitted_as_automation() {
    let dir = demo_project(40.0, stemgraph::demo::DemoOptions::DEFAULT_SEED);
    let recipe = dir.path().join("demo.lua");
    let text = std::fs::read_to_string(&recipe).unwrap().replace(
        "  tempo_bpm = 120,",
        "  tempo_bpm = 120,\n  sections = { intro = 0, verse = 8, chorus = 24 },",
    );
    std::fs::write(&recipe, text).unwrap();
    let reference = render_lua(
        dir.path(),
        "truth",
        "local s = require \"demo\"\ns:automate(\"master.send.bass.compressor.gain_db\", { { 0, 0, \"step\" }, { 24, 5, \"step\" } })\nreturn s\n",
    );
    let r = run_match(&recipe, &[reference.display().to_string()], 100.0);
    let names: Vec<&str> = r.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["intro", "verse", "chorus"]);
    let k = r.stems.iter().position(|s| s == "bass").unwrap();
    let chorus = &r.sections[2];
    eprintln!("sections: {:#?}", r.sections);
    assert!(
        (chorus.stem_db[k] - 5.0).abs() <= 1.0,
        "chorus bass {:+.2}",
        chorus.stem_db[k]
    );
    // The chorus is matched to the reference's loudest part.
    assert!(
        chorus.reference_below_lu.0 < 0.0 && chorus.reference_below_lu.1 > 0.0,
        "{chorus:?}"
    );
    let bass = r
        .proposal
        .automation
        .iter()
        .find(|a| a.param == "master.send.bass.compressor.gain_db")
        .expect("the bass send is automated");
    let times: Vec<f64> = bass.points.iter().map(|p| p.0).collect();
    assert_eq!(times, [0.0, 8.0, 24.0]);
    assert!((bass.points[2].1 - chorus.stem_db[k]).abs() < 0.01);
    // The override file with its automation loads and renders.
    let file = dir.path().join("demo.match.lua");
    let module = stemgraph::matching::writer::module_name(&recipe, &file).unwrap();
    let lua = stemgraph::matching::writer::override_lua(&r, &module);
    assert!(
        lua.contains("s:automate(\"master.send.bass.compressor.gain_db\""),
        "{lua}"
    );
    stemgraph::matching::writer::write(&file, &lua, &[recipe.clone()]).unwrap();
    render_recipe(&file, &dir.path().join("after"));
}
