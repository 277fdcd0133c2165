//! A private `clickhouse-server` for tests and benches: its own config in
//! a temporary folder, listening on 127.0.0.1 only, on free ports, in a
//! process group of its own that is killed when the [`Server`] is dropped
//! (however the test ends).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct Server {
    // Dropped first: the process group goes before its folder.
    _process: testkit::Process,
    dir: PathBuf,
    /// Whether the folder stays when the server stops.
    keep: bool,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
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

/// The `batches` row the store inserts for an append of `samples` (all
/// accepted) under `sequence`, with its `INSERT`'s URL query: for tests
/// that send it themselves, cut short.
pub fn append_row(
    database: &str,
    sequence: u64,
    samples: &[accounting::Sample],
    state: &[u8],
) -> (String, Vec<u8>) {
    let query = format!(
        "query=INSERT%20INTO%20{database}.batches%20FORMAT%20RowBinary&max_insert_block_size=1000000000"
    );
    (
        query,
        crate::write::append_row(sequence, samples, &[], state),
    )
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
        let dir = std::env::temp_dir().join(format!(
            "tollgate-clickhouse-{}-{}",
            std::process::id(),
            free_port()
        ));
        Server::start_in(dir, false)
    }

    /// Starts a server on the data in `dir` (created if absent), kept
    /// when the server stops if `keep`: a bench that fills a large store
    /// in several runs.
    pub fn start_in(dir: PathBuf, keep: bool) -> Server {
        std::fs::create_dir_all(&dir).expect("the server's folder");
        let (http, tcp) = (free_port(), free_port());
        let d = dir.display();
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog><size>10M</size><count>1</count></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
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
</yandex>
"#
        );
        let users = r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"#;
        std::fs::write(dir.join("config.xml"), config).expect("write config.xml");
        std::fs::write(dir.join("users.xml"), users).expect("write users.xml");
        let process = testkit::Process::spawn(
            Command::new("clickhouse-server")
                .arg(format!("--config-file={d}/config.xml"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let url = format!("http://127.0.0.1:{http}");
        let server = Server {
            _process: process,
            dir,
            keep,
            url,
        };
        let start = Instant::now();
        loop {
            let ok = std::net::TcpStream::connect(("127.0.0.1", http)).is_ok();
            if ok {
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
        server
    }
}

/// The `flow_batches` row the store inserts for a batch of flow records
/// (for the bench, which times the encoding apart from the insert).
pub fn flow_batch_row(
    writer: &str,
    sequence: u64,
    rows: &[history::FlowRow],
) -> Result<Vec<u8>, history::StoreError> {
    crate::flows::batch_row(writer, sequence, rows)
}
