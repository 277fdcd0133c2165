//! For `cargo xtask demo`: screenshots of the dashboard of a daemon whose
//! API listens inside a network namespace (the lab's host), taken with
//! Debian's headless Chromium run inside it; and, on request, the
//! dashboard forwarded to this machine's loopback so that a browser here
//! can open it.
//!
//! ```text
//! dashboard_shots shots NETNS URL TOKEN DIR TENANT   # overview.png and tenant.png into DIR
//! dashboard_shots forward NETNS PORT                 # 127.0.0.1:PORT here → 127.0.0.1:PORT in NETNS, until stdin closes
//! ```

#[path = "../tests/browser/mod.rs"]
mod browser;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;

fn shots(netns: String, base: String, token: String, dir: PathBuf, tenant: String) {
    let today = jiff::Zoned::now().date();
    let files = browser::in_netns(Some(netns), move || {
        Box::pin(async move {
            let b = browser::Browser::start("demo").await;
            b.sign_in(&base, &token).await;
            let mut files = Vec::new();
            for (name, path) in [
                ("overview", format!("/?since={today}")),
                ("tenant", format!("/tenants/{tenant}?since={today}")),
            ] {
                b.open(&format!("{base}{path}")).await;
                let file = dir.join(format!("{name}.png"));
                b.screenshot(&file).await;
                files.push(file);
            }
            b.quit().await;
            files
        })
    });
    for f in files {
        println!("{}", f.display());
    }
}

/// Copies bytes one way until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Write);
}

fn forward(netns: String, port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1:{port}: {e}"));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let ns = netns.clone();
            std::thread::spawn(move || {
                // This thread's sockets are made inside the namespace.
                if linux_dataplane::netns::enter(&ns).is_err() {
                    return;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                    return;
                };
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => return,
                };
                std::thread::spawn(move || pipe(c2, s2));
                pipe(server, client);
            });
        }
    });
    // Until stdin closes (or a line is entered).
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, ns, base, token, dir, tenant] if cmd == "shots" => shots(
            ns.clone(),
            base.clone(),
            token.clone(),
            PathBuf::from(dir),
            tenant.clone(),
        ),
        [cmd, ns, port] if cmd == "forward" => forward(ns.clone(), port.parse().expect("PORT")),
        _ => {
            eprintln!(
                "usage: dashboard_shots shots NETNS URL TOKEN DIR TENANT | forward NETNS PORT"
            );
            std::process::exit(1);
        }
    }
}
