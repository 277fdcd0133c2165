//! Prints the plan a policy compiles to, as `tc -batch` or `nft -f` input,
//! for trying it on a kernel by hand (in a network namespace):
//!
//! ```sh
//! cargo run -p compiler --example render -- examples/router.toml tc
//! cargo run -p compiler --example render -- examples/router.toml nft
//! ```
//!
//! Prefix-list files are read beside the policy. Nothing is applied.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(what)) = (args.first(), args.get(1)) else {
        eprintln!("usage: render POLICY tc|nft");
        return ExitCode::from(2);
    };
    let path = Path::new(path);
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let loaded = policy::load_bytes(&path.display().to_string(), &bytes, &mut |name| {
        let p = policy::resolve_prefix_file(&dir, name, &[])?;
        std::fs::read(&p).map_err(|e| policy::ReadError::Io(e.to_string()))
    });
    eprint!("{}", loaded.render());
    let Some(p) = loaded.policy else {
        return ExitCode::from(1);
    };
    let compiled = match compiler::compile(&p, &compiler::HostFacts::default()) {
        Ok(c) => c,
        Err(diags) => {
            for d in diags {
                eprint!("{}", d.render(&loaded.sources));
            }
            return ExitCode::from(1);
        }
    };
    match what.as_str() {
        "tc" => print!("{}", plan::render::plan_tc(&compiled.plan)),
        "nft" => print!("{}", plan::render::plan_nft(&compiled.plan)),
        _ => {
            eprintln!("usage: render POLICY tc|nft");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
