//! The deployment guides' policies are valid: every block written to
//! `/etc/tollgate/tollgate.toml` by a `cat > … <<'EOF'` in
//! docs/deploy-*.md passes `tollgate check`, and the shipped policy does
//! too. A guide is pasted as it is, so a key renamed in the policy format
//! must show up here, not on an operator's box.

use std::process::Command;

/// The heredoc bodies written to `target` in a markdown file.
fn heredocs(text: &str, target: &str) -> Vec<String> {
    let opener = format!("cat > {target} <<'EOF'\n");
    text.match_indices(&opener)
        .map(|(at, _)| {
            let body = &text[at + opener.len()..];
            body[..body.find("\nEOF\n").expect("the heredoc ends") + 1].to_string()
        })
        .collect()
}

fn check(name: &str, policy: &str) {
    let path = std::env::temp_dir().join(format!("tg-docs-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, policy).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("run tollgate check");
    let _ = std::fs::remove_file(&path);
    assert!(
        o.status.success(),
        "{name}'s policy fails check:\n{}{policy}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn every_deployment_guides_policy_and_the_shipped_one_pass_check() {
    let docs = testkit::repo().join("docs");
    let mut seen = 0;
    for e in std::fs::read_dir(&docs).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("deploy-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, policy) in heredocs(&text, "/etc/tollgate/tollgate.toml")
            .iter()
            .enumerate()
        {
            check(&format!("{name}-{i}"), policy);
            seen += 1;
        }
    }
    assert!(seen >= 4, "found only {seen} policies in docs/deploy-*.md");
    let shipped =
        std::fs::read_to_string(testkit::repo().join("contrib/debian/tollgate.toml")).unwrap();
    check("shipped", &shipped);
}
