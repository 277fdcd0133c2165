//! Compiles `bpf/classify.c` (the classifier) and `bpf/xdp_drop.c` (the
//! XDP drop list) into BPF objects with clang, so that the normal `cargo
//! build` produces the programs the dataplane loads. The objects are
//! embedded by `src/lib.rs` and `src/xdp.rs` with `include_bytes!`.

use std::path::PathBuf;
use std::process::Command;

const HINT: &str = "tollgate's eBPF classifier is C compiled by clang with libbpf's headers: \
install Debian's `clang` and `libbpf-dev` (apt-get install -y clang libbpf-dev; `cargo xtask ci` installs them), \
or point CLANG at a clang that can target bpf";

fn main() {
    println!("cargo:rerun-if-changed=bpf/rtt.h");
    println!("cargo:rerun-if-env-changed=CLANG");
    if !std::path::Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        panic!("\n\nbpf/bpf_helpers.h not found (package `libbpf-dev` missing).\n{HINT}\n");
    }
    compile("bpf/classify.c", "classify.o");
    compile("bpf/xdp_drop.c", "xdp_drop.o");
}

fn compile(src: &str, object: &str) {
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join(object);
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // <linux/bpf.h> includes <asm/types.h>, which Debian keeps under the
    // multiarch folder that `-target bpf` does not search by itself.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    let status = Command::new(&clang)
        .args([
            "-target", "bpf", "-O2", "-g", "-Wall", "-Werror", &multiarch, "-c", src, "-o",
        ])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("\n\n{clang} failed to compile {src} ({s}).\n{HINT}\n"),
        Err(e) => panic!("\n\ncould not run `{clang}` ({e}): package `clang` missing?\n{HINT}\n"),
    }
}
