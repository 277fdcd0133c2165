//! Builds the browser app (`web/`) and embeds it.
//!
//! `npm ci` (only when `web/node_modules` is missing or was installed from
//! another `package-lock.json`) and `npm run build` write the app into
//! `OUT_DIR`, never into the source tree; each file is then gzipped once,
//! and `assets.rs` lists them for `include_bytes!`. Cargo runs this again
//! only when a file of the app changes.
//!
//! Needs Node.js and npm, and the npm registry for the first `npm ci`
//! (third-party browser code comes from there, pinned by the lockfile,
//! and is never copied into the repository). Without them the build
//! stops with what to install. `TOLLGATE_DASHBOARD_DIST=DIR` uses an app
//! built elsewhere instead (a machine with no npm registry in reach).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let web = manifest.join("web");
    for f in [
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.js",
        "src",
        "public",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(f).display());
    }
    println!("cargo:rerun-if-env-changed=TOLLGATE_DASHBOARD_DIST");
    let dist = match std::env::var_os("TOLLGATE_DASHBOARD_DIST") {
        Some(d) => PathBuf::from(d),
        None => {
            let dist = out.join("dist");
            build(&web, &dist);
            dist
        }
    };
    embed(&dist, &out.join("assets.rs"));
}

fn fail(what: &str) -> ! {
    panic!(
        "\n\nthe dashboard cannot be built: {what}\n\
         It needs Node.js ≥ 20.19 and npm (Debian: apt-get install nodejs npm), and the npm registry for the first `npm ci` in crates/dashboard/web.\n\
         Or build it elsewhere (`npm ci && npm run build` in crates/dashboard/web) and set TOLLGATE_DASHBOARD_DIST to its dist/ folder.\n"
    )
}

fn run(web: &Path, args: &[&str]) {
    // One npm at a time in web/: cargo may build this script for check,
    // build and test at once, and two `npm ci` would fight over
    // node_modules. `flock` (util-linux) waits for the other.
    let lock = web.join(".npm.lock");
    let status = Command::new("flock")
        .arg(&lock)
        .arg("npm")
        .args(args)
        .current_dir(web)
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run `flock npm {}`: {e}", args.join(" "))));
    if !status.success() {
        fail(&format!("`npm {}` failed ({status})", args.join(" ")));
    }
}

fn build(web: &Path, dist: &Path) {
    let lock = std::fs::read(web.join("package-lock.json"))
        .unwrap_or_else(|e| fail(&format!("web/package-lock.json: {e}")));
    let stamp = web.join("node_modules/.tollgate-lock");
    if std::fs::read(&stamp).ok().as_deref() != Some(&lock[..]) {
        run(web, &["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
        std::fs::write(&stamp, &lock)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", stamp.display())));
    }
    let dist_arg = dist.to_string_lossy().into_owned();
    run(
        web,
        &[
            "run",
            "build",
            "--silent",
            "--",
            "--logLevel",
            "warn",
            "--emptyOutDir",
            "--outDir",
            &dist_arg,
        ],
    );
}

/// The content type of a built file.
fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn embed(dist: &Path, target: &Path) {
    let mut list = Vec::new();
    files(dist, &mut list);
    if !list.iter().any(|p| p.ends_with("index.html")) {
        fail(&format!("{} holds no index.html", dist.display()));
    }
    let gz_dir = target.with_file_name("gz");
    std::fs::create_dir_all(&gz_dir).expect("OUT_DIR is writable");
    let mut code =
        String::from("/// Every file of the built app.\npub static ASSETS: &[Asset] = &[\n");
    for (i, p) in list.iter().enumerate() {
        let rel = p.strip_prefix(dist).expect("under dist");
        let url = format!("/{}", rel.to_string_lossy());
        let body = std::fs::read(p).unwrap_or_else(|e| fail(&format!("{}: {e}", p.display())));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&body).expect("in memory");
        let gz = gz.finish().expect("in memory");
        let gz_path = gz_dir.join(format!("{i}.gz"));
        std::fs::write(&gz_path, &gz).expect("OUT_DIR is writable");
        // A weak hash for the ETag: any change of content changes it.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in &body {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        code.push_str(&format!(
            "    Asset {{ path: {url:?}, mime: {:?}, body: include_bytes!({:?}), gzip: include_bytes!({:?}), etag: \"\\\"{h:016x}\\\"\" }},\n",
            mime(&url),
            p.display().to_string(),
            gz_path.display().to_string(),
        ));
    }
    code.push_str("];\n");
    std::fs::write(target, code).expect("OUT_DIR is writable");
}
