//! The dashboard's bench, measured in headless Chromium with the
//! Performance API against a running API (`crates/api/examples/
//! bench_site.rs` over the history bench's store): for each page, the
//! time from navigation to the mark the page sets when it has drawn, and
//! next to it the API calls it waited for (their Resource Timing
//! durations, measured in the same load); the JS + CSS as transferred;
//! and the tenant graph's PNG export.
//!
//! `dashboard_bench URL TOKEN TENANT PERIOD [RUNS]`; run it under
//! `flock -o /work/locks/bench`. Prints one line per figure, medians of
//! RUNS loads (5 by default) after one warm-up.

#[path = "../tests/browser/mod.rs"]
mod browser;

use serde_json::Value;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The page's marks and the API calls it made, from one load.
const TIMINGS: &str = "return {
    marks: Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, m.startTime])),
    calls: performance.getEntriesByType('resource').filter(r => r.name.includes('/api/v1/')).map(r => [new URL(r.name).pathname + new URL(r.name).search, r.duration]),
    assets: performance.getEntriesByType('resource').filter(r => /\\.(js|css)$/.test(new URL(r.name).pathname)).map(r => [new URL(r.name).pathname, r.encodedBodySize]),
}";

/// Loads `url`, waits for `mark` and then for `settle` (the page's last
/// call, so that no request of this load still runs on the server when
/// the next one starts).
async fn page(b: &browser::Browser, url: &str, mark: &str, settle: &str) -> Value {
    b.client.goto(url).await.unwrap();
    b.wait_for(
        mark,
        &format!("return performance.getEntriesByName({mark:?}).length > 0"),
    )
    .await;
    b.wait_for(
        settle,
        &format!("return performance.getEntriesByName({settle:?}).length > 0"),
    )
    .await;
    b.js(TIMINGS).await
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, token, tenant, period, runs) = match args.as_slice() {
        [b, t, n, p] => (b.clone(), t.clone(), n.clone(), p.clone(), 5),
        [b, t, n, p, r] => (
            b.clone(),
            t.clone(),
            n.clone(),
            p.clone(),
            r.parse().expect("RUNS"),
        ),
        _ => {
            eprintln!("usage: dashboard_bench URL TOKEN TENANT PERIOD [RUNS]");
            std::process::exit(1);
        }
    };
    browser::in_netns(None, move || {
        Box::pin(async move {
            let b = browser::Browser::start("bench").await;
            b.sign_in(&base, &token).await;
            let pages = [
                (
                    "tenant page to graph drawn",
                    format!("{base}/tenants/{tenant}?period={period}"),
                    "graph tenant-graph",
                    format!("ready /tenants/{tenant}"),
                ),
                (
                    "overview",
                    format!("{base}/?period={period}"),
                    "ready /",
                    "ready /".to_string(),
                ),
                (
                    "tenants sorted by month volume",
                    format!("{base}/tenants?sort=volume&period={period}"),
                    "list /tenants",
                    "p95 /tenants".to_string(),
                ),
                (
                    "the same list's 95th column filled",
                    format!("{base}/tenants?sort=volume&period={period}"),
                    "p95 /tenants",
                    "p95 /tenants".to_string(),
                ),
            ];
            for (name, url, mark, settle) in pages {
                // The first load: assets into the browser's cache, and the
                // server's caches (the site's settled days) filled.
                let first = page(&b, &url, mark, &settle).await;
                let mut total = Vec::new();
                let mut calls: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
                for _ in 0..runs {
                    let v = page(&b, &url, mark, &settle).await;
                    total.push(v["marks"][mark].as_f64().unwrap());
                    for c in v["calls"].as_array().unwrap() {
                        let path = c[0].as_str().unwrap().to_string();
                        let path = path.split('?').next().unwrap().to_string();
                        calls.entry(path).or_default().push(c[1].as_f64().unwrap());
                    }
                }
                let calls: Vec<String> = calls
                    .into_iter()
                    .map(|(p, v)| format!("{p} {:.0} ms", median(v)))
                    .collect();
                println!(
                    "{name}: {:.0} ms (median of {runs}; first load {:.0} ms); API: {}",
                    median(total),
                    first["marks"][mark].as_f64().unwrap(),
                    calls.join(", ")
                );
            }
            // Assets as transferred (a cold load, cache off).
            b.client.goto(&format!("{base}/flows")).await.unwrap();
            let v = b.js(TIMINGS).await;
            let assets: Vec<String> = v["assets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| format!("{} {} B", a[0].as_str().unwrap(), a[1]))
                .collect();
            println!("JS + CSS as sent (gzip): {}", assets.join(", "));
            // The PNG export, from the browser.
            let png = format!("/api/v1/tenants/{tenant}/graph.png?period={period}");
            let mut times = Vec::new();
            for _ in 0..=runs {
                let t = b
                    .client
                    .execute_async(
                        "const done = arguments[1]; const t0 = performance.now(); fetch(arguments[0], {cache: 'no-store'}).then(r => r.arrayBuffer()).then(a => done([performance.now() - t0, a.byteLength]));",
                        vec![serde_json::json!(png)],
                    )
                    .await
                    .unwrap();
                times.push(t[0].as_f64().unwrap());
            }
            times.remove(0);
            println!(
                "graph PNG export ({png}): {:.0} ms (median of {runs})",
                median(times)
            );
            b.quit().await;
        })
    });
}
