//! A private `clickhouse-server` for tests and benches: its own config in
//! a temporary folder, listening on 127.0.0.1 only, on free ports, in a
//! process group of its own that is killed when the [`Server`] is dropped
//! (however the test ends). It can be killed and started again on the
//! same data ([`Server::kill`], [`Server::start_again`]), and run inside a
//! network namespace ([`Server::start_in`]) for a daemon that lives there.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct Server {
    // Dropped first: the process group goes before its folder.
    process: Option<testkit::Process>,
    dir: PathBuf,
    /// The network namespace it runs in (`None`: this process's).
    netns: Option<String>,
    /// Whether the folder stays when the server stops.
    keep: bool,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its HTTP port.
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The rule for tests that need the server: `Some(server)` to run;
/// `None` (having said so) when `clickhouse-server` is missing and
/// `TOLLGATE_SKIP_ROOT_TESTS=1`; a panic when it is missing otherwise.
pub fn server(test: &str) -> Option<Server> {
    if !testkit::have("clickhouse-server") {
        if std::env::var(testkit::SKIP).as_deref() == Ok("1") {
            eprintln!(
                "skipping {test}: clickhouse-server is not installed and {}=1",
                testkit::SKIP
            );
            return None;
        }
        testkit::need("clickhouse-server", "clickhouse-server");
    }
    Some(Server::start())
}

/// [`server`] inside network namespace `netns`, listening on its
/// loopback and on `address` (one of the namespace's own), taking the
/// default user from `network` (a CIDR block) as well as from loopback:
/// for agents in other namespaces that write to it directly.
pub fn server_in(test: &str, netns: &str, address: &str, network: &str) -> Option<Server> {
    if !testkit::have("clickhouse-server") {
        // Says why, and skips or fails, by the same rule.
        return server(test);
    }
    Some(Server::start_with(Some(netns), &[address], network))
}

/// The `sample_batches` row the store inserts for an append of `samples` (all
/// accepted) under `sequence`, with its `INSERT`'s URL query: for tests
/// that send it themselves, cut short.
pub fn append_row(
    database: &str,
    sequence: u64,
    samples: &[accounting::Sample],
    state: &[u8],
) -> (String, Vec<u8>) {
    let query = format!(
        "query=INSERT%20INTO%20{database}.sample_batches%20FORMAT%20RowBinary&max_insert_block_size=1000000000"
    );
    (
        query,
        crate::write::append_row(sequence, samples, &[], state),
    )
}

/// The schema-1 `batches` row of an append of `samples` (all accepted)
/// and `coverage`,
/// with its `INSERT`'s URL query: what a build before schema 5 sent, for
/// a test that fills an old database before migrating it.
pub fn batches_row(
    database: &str,
    sequence: u64,
    samples: &[accounting::Sample],
    coverage: &[accounting::SlotCoverage],
    state: &[u8],
) -> (String, Vec<u8>) {
    let query = format!(
        "query=INSERT%20INTO%20{database}.batches%20FORMAT%20RowBinary&max_insert_block_size=1000000000"
    );
    (
        query,
        crate::write::batches_row(sequence, samples, coverage, state),
    )
}

/// Creates `options`' database at schema `version` (an old database, for
/// a test of the migration to the newest).
pub fn create_at_schema(
    options: &crate::ClickHouseOptions,
    version: i64,
) -> Result<(), history::StoreError> {
    let client = crate::client::Client::connect(&options.url, &options.database, options.timeout)?;
    crate::schema::migrate_through(&client, version)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Starts a server and waits until it answers (at most a minute).
    pub fn start() -> Server {
        Server::start_in(None)
    }

    /// Starts a server in the network namespace `netns` (by `ip netns
    /// exec`; `None`: this process's) and waits until it answers there.
    pub fn start_in(netns: Option<&str>) -> Server {
        Server::start_with(netns, &[], "127.0.0.1")
    }

    /// [`Server::start_in`], listening on `listen` (addresses of the
    /// namespace) as well as 127.0.0.1, and taking the default user from
    /// `network` (a CIDR block) as well as from loopback.
    fn start_with(netns: Option<&str>, listen: &[&str], network: &str) -> Server {
        let dir = std::env::temp_dir().join(format!(
            "tollgate-clickhouse-{}-{}",
            std::process::id(),
            free_port()
        ));
        Server::launch(dir, false, netns, listen, network)
    }

    /// Starts a server on the data in `dir` (created if absent), kept
    /// when the server stops if `keep`: a bench that fills a large store
    /// in several runs.
    pub fn start_on(dir: PathBuf, keep: bool) -> Server {
        Server::launch(dir, keep, None, &[], "127.0.0.1")
    }

    fn launch(
        dir: PathBuf,
        keep: bool,
        netns: Option<&str>,
        listen: &[&str],
        network: &str,
    ) -> Server {
        std::fs::create_dir_all(&dir).expect("the server's folder");
        let (http, tcp) = (free_port(), free_port());
        let d = dir.display();
        let extra_listen: String = listen
            .iter()
            .map(|a| format!("\n  <listen_host>{a}</listen_host>"))
            .collect();
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog><size>10M</size><count>1</count></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>{extra_listen}
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <!-- Parts merged away are deleted after 10 s, not the default 8 minutes:
       under a bench's continuous ingest they held several times the live
       data (16 GB for 3.6 GB at 10,000 tenants × 31 days). 18.16 takes it. -->
  <merge_tree><old_parts_lifetime>10</old_parts_lifetime></merge_tree>
</yandex>
"#
        );
        let users = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>{network}</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"#
        );
        std::fs::write(dir.join("config.xml"), config).expect("write config.xml");
        std::fs::write(dir.join("users.xml"), users).expect("write users.xml");
        let url = format!("http://127.0.0.1:{http}");
        let mut server = Server {
            process: None,
            dir,
            netns: netns.map(str::to_string),
            keep,
            url,
            port: http,
        };
        server.start_again();
        server
    }

    /// Kills the server's process group (SIGKILL, as a crash or an
    /// operator's `kill -9` would) and waits for it to be gone; its data
    /// stays.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.signal_group(SIGKILL);
            assert!(
                p.wait(Duration::from_secs(30)).is_some(),
                "clickhouse-server outlived SIGKILL for 30 s"
            );
        }
    }

    /// Starts the server (again, on the same data and ports) and waits
    /// until it answers (at most a minute).
    pub fn start_again(&mut self) {
        self.kill();
        let d = self.dir.display();
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "clickhouse-server"]);
                c
            }
            None => Command::new("clickhouse-server"),
        };
        self.process = Some(testkit::Process::spawn(
            cmd.arg(format!("--config-file={d}/config.xml"))
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        ));
        let server = &*self;
        let start = Instant::now();
        loop {
            if server.answers() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "clickhouse-server did not answer on {} within a minute; see {}/error.log",
                server.url,
                server.dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether it answers `/ping` (in its namespace).
    fn answers(&self) -> bool {
        match &self.netns {
            None => {
                let port = self.url.rsplit(':').next().and_then(|p| p.parse().ok());
                port.is_some_and(|p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok())
            }
            Some(ns) => Command::new("ip")
                .args(["netns", "exec", ns, "curl", "-sf", "-o", "/dev/null"])
                .arg(format!("{}/ping", self.url))
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
        }
    }

    /// Runs `sql` on the server (in its namespace) and returns the answer
    /// as text; panics, with the server's message, on an error.
    pub fn query(&self, sql: &str) -> String {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "curl"]);
                c
            }
            None => Command::new("curl"),
        };
        let o = cmd
            .args(["-sS", "--fail-with-body", "--data-binary", sql, &self.url])
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "{sql}: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        text
    }
}

/// SIGKILL's number (9 on every Linux architecture).
const SIGKILL: i32 = 9;

/// The `flow_batches` row the store inserts for a batch of flow records
/// (for the bench, which times the encoding apart from the insert).
pub fn flow_batch_row(
    writer: &str,
    sequence: u64,
    rows: &[history::FlowRow],
) -> Result<Vec<u8>, history::StoreError> {
    crate::flows::batch_row(writer, sequence, rows)
}
