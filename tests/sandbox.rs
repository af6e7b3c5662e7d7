//! A recipe is someone else's code: every escape attempt is refused with a clear error and the
//! process stays healthy.

use stemgraph::script::load_recipe;

fn run(body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.lua");
    std::fs::write(&path, format!("{body}\nreturn session {{}}\n")).unwrap();
    match load_recipe(&path) {
        Ok(_) => "loaded".into(),
        Err(e) => e.to_string(),
    }
}

fn refused(body: &str, expect: &str) {
    let msg = run(body);
    assert!(msg.contains(expect), "`{body}` gave: {msg}");
    assert!(!msg.contains("panicked"), "{msg}");
}

#[test]
fn dangerous_functions_are_absent() {
    refused("os.execute('touch /tmp/pwned')", "os");
    refused("io.popen('ls')", "io");
    refused("dofile('/etc/passwd')", "dofile");
    refused("loadfile('/etc/passwd')", "loadfile");
    refused("local f = string.dump(print)", "dump");
    refused("package.loadlib('libc.so.6', 'system')", "package");
    refused("local f = io.open('/tmp/x', 'w')", "io");
    assert!(!std::path::Path::new("/tmp/pwned").exists());
}

#[test]
fn bytecode_cannot_be_loaded() {
    refused("local f = load(string.dump(function() end))", "dump");
    refused(
        "local f = assert(load('\\27Lua...', 'x', 'b'))",
        "only text chunks",
    );
    refused("local f = assert(load('\\27LuaT\\0'))", "binary chunks");
}

#[test]
fn endless_loops_are_stopped() {
    refused("while true do end", "ran too long");
    refused(
        "local co = coroutine.wrap(function() while true do end end) co()",
        "ran too long",
    );
    refused(
        "local co = coroutine.create(function() local x = 0 while true do x = x + 1 end end) \
             local ok, e = coroutine.resume(co) error(e)",
        "ran too long",
    );
}

#[test]
fn pathological_patterns_are_refused() {
    refused(
        "local r = ('a'):rep(400):find('.-.-.-b')",
        "could take too long",
    );
    // Ordinary patterns still work.
    assert_eq!(run("assert(('1:12.5'):match('^(%d+):') == '1')"), "loaded");
}

#[test]
fn memory_bombs_are_stopped() {
    refused(
        "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end",
        "too much memory",
    );
    refused("local s = ('x'):rep(1e12)", "too large");
}

#[test]
fn templates_stay_inside_the_search_path() {
    refused("template '../x'", "not a template or module name");
    refused("template '/etc/passwd'", "not a template or module name");
    refused("require '../../secrets'", "not a template or module name");
    refused(
        "template 'no_such_template'",
        "no template or module `no_such_template`",
    );
}

#[test]
fn random_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.lua");
    std::fs::write(
        &path,
        "local s = session { title = tostring(math.random(1, 1000000)) } return s",
    )
    .unwrap();
    let a = load_recipe(&path).unwrap().title;
    let b = load_recipe(&path).unwrap().title;
    assert_eq!(a, b);
}

#[test]
fn the_process_is_healthy_after_all_that() {
    dangerous_functions_are_absent();
    endless_loops_are_stopped();
    assert_eq!(run("local x = 1 + 1"), "loaded");
}
