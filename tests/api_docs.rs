//! `docs/lua-api.md` and `lua/stemgraph.d.lua` list every node and parameter the engine knows:
//! they are regenerated from the registry and compared with the committed files.
//! `STEMGRAPH_BLESS=1 cargo test --test suite api_docs` rewrites them.

use std::path::Path;
use stemgraph::dsp::registry;
use stemgraph::script::docs;

fn check(path: &str, generated: String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("STEMGRAPH_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with the engine; run STEMGRAPH_BLESS=1 cargo test --test suite api_docs",
        path.display()
    );
}

#[test]
fn api_reference_matches_the_registry() {
    check("docs/lua-api.md", docs::markdown());
}

#[test]
fn annotations_match_the_registry() {
    check("lua/stemgraph.d.lua", docs::annotations());
}

#[test]
fn every_kind_and_parameter_is_documented() {
    let md = docs::markdown();
    let ann = docs::annotations();
    for kind in registry::kinds() {
        assert!(
            md.contains(&format!("### `{}`", kind.name)),
            "{} missing from the reference",
            kind.name
        );
        assert!(
            ann.contains(&format!("function {}(options)", kind.name)),
            "{} missing from annotations",
            kind.name
        );
        let params = docs::kind_params(kind);
        assert!(
            !params.is_empty() || kind.name == "latency_delay",
            "{} has no parameters?",
            kind.name
        );
        for p in params {
            assert!(
                md.contains(&format!("| `{}` |", p.name)),
                "{}.{} missing",
                kind.name,
                p.name
            );
        }
    }
}
