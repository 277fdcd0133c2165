//! The browser app's own unit tests (vitest: units, time zones, periods),
//! run by `cargo test -p dashboard` so that CI runs them with the rest.
//! The build script installed the app's packages already.

#[test]
fn the_web_apps_unit_tests_pass() {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let out = std::process::Command::new("npx")
        .args(["--no-install", "vitest", "run", "--reporter=dot"])
        .current_dir(&web)
        .output()
        .expect("npx (Node.js) is installed: the build needed it");
    assert!(
        out.status.success(),
        "vitest failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
