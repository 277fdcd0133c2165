//! The whole import of a 10,000-circuit ShapedDevices.csv (13,334 rows,
//! one in three circuits with two devices) under 10 sites × 10 access
//! points: read, map, write the policy and check it as `tollgate check`
//! does (parse, validate, compile). The goal is under 1 s.

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use libreqos::{import, Options, Source};

fn main() {
    divan::main();
}

#[divan::bench(args = [1_000, 10_000], sample_count = 5)]
fn import_circuits(bencher: Bencher, circuits: usize) {
    let files = libreqos::synthetic::files(circuits, 10, 10);
    let options = Options::default();
    bencher.counter(ItemsCount::new(circuits)).bench_local(|| {
        let out = import(
            Source {
                name: "ShapedDevices.csv",
                bytes: files.shaped_devices.as_bytes(),
            },
            Some(Source {
                name: "network.json",
                bytes: files.network.as_bytes(),
            }),
            &options,
            &mut |_| {},
        );
        assert!(out.policy.is_some());
        black_box(out)
    });
}
