//! Heap used by `check` and `plan` on synthetic policies: a counting global
//! allocator records the bytes live after each stage and the peak during it.
//!
//! ```sh
//! cargo run --release -p compiler --example memory -- 10000 100000
//! ```
//!
//! `check` is load + compile; `plan` adds reading the live placements back
//! and diffing against the observed plan (here: the plan itself, the
//! steady state; and an empty kernel, the first apply).
#![allow(unsafe_code)] // the counting allocator

use compiler::synthetic::{policy_text, Shape};
use compiler::{compile, HostFacts, Live};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                let now =
                    LIVE.fetch_add(new_size - layout.size(), Relaxed) + new_size - layout.size();
                PEAK.fetch_max(now, Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// The process's peak resident set (`VmHWM`), in bytes, if Linux says.
fn rss_peak() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak resident set to what is resident now (Linux 4.0+).
fn reset_rss_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The highest heap peak and resident-set peak of any stage.
static MAX_HEAP: AtomicUsize = AtomicUsize::new(0);
static MAX_RSS: AtomicUsize = AtomicUsize::new(0);

/// Runs `f`, printing the heap live after it, the heap's peak during it,
/// and the process's resident-set peak during it. The heap counts bytes
/// asked for (a doubled `Vec`'s untouched half included); the resident set
/// is what the machine actually gave.
fn stage<T>(name: &str, tenants: u32, f: impl FnOnce() -> T) -> T {
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    reset_rss_peak();
    let out = f();
    let (after, peak) = (LIVE.load(Relaxed), PEAK.load(Relaxed));
    let rss = rss_peak().unwrap_or(0);
    MAX_HEAP.fetch_max(peak, Relaxed);
    MAX_RSS.fetch_max(rss, Relaxed);
    println!(
        "{tenants:>8} {name:<22} heap live {:>7.1} MiB, peak {:>7.1} MiB (+{:>6.1}); RSS peak {:>7.1} MiB; {:>5.0} B/tenant kept",
        mib(after),
        mib(peak),
        mib(peak - before),
        mib(rss),
        after.saturating_sub(before) as f64 / tenants as f64
    );
    out
}

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    for tenants in sizes {
        let base = LIVE.load(Relaxed);
        MAX_HEAP.store(0, Relaxed);
        MAX_RSS.store(0, Relaxed);
        let text = stage("policy text", tenants, || {
            policy_text(&Shape::router(tenants))
        });
        let loaded = stage("policy::load", tenants, || {
            policy::load_str("p.toml", &text)
        });
        assert!(!loaded.has_errors(), "{}", loaded.render());
        let p = loaded.policy.as_ref().expect("valid");
        let compiled = stage("compile (cold)", tenants, || {
            compile(p, &HostFacts::default()).expect("compiles")
        });
        if std::env::var_os("BREAKDOWN").is_some() {
            let c = compiled.clone();
            let b = LIVE.load(Relaxed);
            let (plan, prov, placements) = (c.plan, c.provenance, c.placements);
            let m = LIVE.load(Relaxed);
            drop(prov);
            let a = LIVE.load(Relaxed);
            println!("provenance {:.1} MiB", mib(m - a));
            let pre = LIVE.load(Relaxed);
            let classes = plan.classes;
            let maps = plan.maps;
            drop(classes);
            let a2 = LIVE.load(Relaxed);
            println!("classes {:.1} MiB", mib(pre - a2));
            drop(maps);
            println!("maps {:.1} MiB", mib(a2 - LIVE.load(Relaxed)));
            drop(placements);
            let _ = b;
        }
        let live = stage("Live::from_plan", tenants, || {
            Live::from_plan(&compiled.plan)
        });
        let facts = HostFacts {
            live,
            ..HostFacts::default()
        };
        let warm = stage("compile (warm)", tenants, || {
            compile(p, &facts).expect("compiles")
        });
        let cs = stage("diff (steady state)", tenants, || {
            plan::diff(&warm.plan, &compiled.plan)
        });
        assert!(cs.is_empty());
        drop(warm);
        let first = stage("diff (empty kernel)", tenants, || {
            plan::diff(&compiled.plan, &plan::Plan::default())
        });
        drop(first);
        println!(
            "{tenants:>8} {:<22} heap {:.1} MiB above the start, RSS {:.1} MiB; {} plan objects",
            "highest peak",
            mib(MAX_HEAP.load(Relaxed) - base),
            mib(MAX_RSS.load(Relaxed)),
            compiled.plan.object_count()
        );
        drop((compiled, facts, loaded, text));
    }
}
