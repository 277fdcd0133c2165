//! A stand-in for a root test, for `tests/root_rule.rs`: applies the
//! root-test rule ([`testkit::root`]) as any root test does, and says
//! whether it went on.

fn main() {
    if testkit::root("root_probe") {
        println!("ran");
    } else {
        println!("skipped");
    }
}
