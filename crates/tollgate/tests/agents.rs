//! An agent shipping its closed slots to a central tollgate (issue 16,
//! item 3; docs/agents.md), two real daemons in namespaces:
//!
//! - the two daemons are `agent_pair`'s;
//! - slots close without waiting for the wall clock: each daemon is
//!   started with `TOLLGATE_CLOCK_SKEW` so that it lives 12 s before a
//!   5-minute boundary, and the agent is restarted with a later skew for
//!   the next slot;
//! - the central is stopped while the agent records a slot, then started:
//!   the agent (which asked the central at start, and retries with
//!   backoff) catches up; the central's samples equal the agent's local
//!   ones to the byte and to the datagram sent (nothing lost, nothing
//!   doubled);
//! - a batch sent twice answers `duplicate: true` and counts once; a read
//!   token and a bad writer are refused.
//!
//! Needs root, iproute2, nftables, python3 and curl.

use accounting::{Sample, Slot};
use engine::shipped::SEQUENCES_PER_SLOT;
use std::process::Command;
use std::time::{Duration, Instant};

mod agent_pair;
mod daemon_site;

use agent_pair::{national_down, needs, samples, tenants, tollgate_in, Pair, CENTRAL_API};
use daemon_site::{send_to_tenant, sh, skew_before_boundary, wait_for, Daemon, Site, FRAME};

#[test]
fn an_agent_ships_every_closed_slot_once_across_a_central_outage() {
    if !testkit::root("an_agent_ships_every_closed_slot_once_across_a_central_outage") {
        return;
    }
    needs();
    let p = Pair::new("tgag");
    let t0 = jiff::Timestamp::now().as_second();
    let (skew1, slot1) = skew_before_boundary(t0);
    let central = p.start_central(skew1);
    let agent = p.start_agent(skew1);
    p.send(1000);
    // The first slot closes 12 s after start (plus a read) and is shipped.
    wait_for("slot 1 shipped", Duration::from_secs(60), || {
        p.standing()
            .is_some_and(|s| s >= slot1.0 as u64 * SEQUENCES_PER_SLOT)
    });

    // The central stops; the agent records the next slot alone. Its
    // restart (to jump the clock before the next boundary) also makes it
    // ask the central where it stands, which fails: backoff.
    let central_log = central.log();
    assert!(central.stop().success(), "{central_log}");
    let log = agent.log();
    assert!(agent.stop().success(), "{log}");
    let (skew2, slot2) = skew_before_boundary(t0 + skew1 + 60);
    assert!(slot2 > slot1, "{slot2:?} after {slot1:?}");
    let agent = p.start_agent(skew2);
    p.send(700);
    let closed = Instant::now();
    wait_for("slot 2 closed locally", Duration::from_secs(60), || {
        samples(&p.agent).iter().any(|s| s.slot == slot2)
    });
    assert!(closed.elapsed() < Duration::from_secs(60));
    assert!(
        agent.log().contains("retrying with backoff"),
        "{}",
        agent.log()
    );

    // The central is back: the agent catches up, in order.
    let central = p.start_central(skew2);
    wait_for("slot 2 shipped", Duration::from_secs(60), || {
        p.standing()
            .is_some_and(|s| s >= slot2.0 as u64 * SEQUENCES_PER_SLOT)
    });
    let (status, body) = p.call("GET", "/api/v1/agents", "central.token", None);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["agents"][0]["writer"], "hv1", "{body}");
    assert_eq!(v["agents"][0]["last_slot"], slot2.0, "{body}");
    // The counts went on across the central's restart: both slots.
    assert_eq!(v["agents"][0]["batches"], 2, "{body}");
    assert_eq!(v["agents"][0]["duplicates"], 0, "{body}");
    assert!(
        v["agents"][0]["lag_seconds"].as_i64().unwrap() < 120,
        "{body}"
    );

    // A batch sent twice counts once.
    let before = samples(&p.central);
    let slot2_samples: Vec<&Sample> = before.iter().filter(|s| s.slot == slot2).collect();
    assert!(!slot2_samples.is_empty());
    let again = serde_json::json!({
        "writer": "hv1",
        "sequence": slot2.0,
        "samples": slot2_samples,
        "coverage": [{"slot": slot2.0, "status": "measured"}],
    })
    .to_string();
    let (status, body) = p.call(
        "POST",
        "/api/v1/history/batches",
        "central.token",
        Some(&again),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["duplicate"], true, "{body}");
    assert_eq!(v["sequence"], slot2.0 as u64 * SEQUENCES_PER_SLOT, "{body}");
    // Refusals: a read token may not add, a bad writer is named.
    let (status, body) = p.call(
        "POST",
        "/api/v1/history/batches",
        "read.token",
        Some(&again),
    );
    assert_eq!(status, 403, "{body}");
    let bad = again.replace("\"hv1\"", "\"flows\"");
    let (status, body) = p.call(
        "POST",
        "/api/v1/history/batches",
        "central.token",
        Some(&bad),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("\"field\":\"writer\""), "{body}");

    let log = agent.log();
    assert!(agent.stop().success(), "{log}");
    let log = central.log();
    assert!(central.stop().success(), "{log}");

    // To the byte: the central holds exactly the agent's closed samples,
    // and they are the datagrams sent (the first slot's 1000, the second's
    // 700), none lost, none doubled.
    // Tenant 0 is each site's traffic of no tenant (ARP, neighbour
    // discovery): the central records its own beside the agent's, so only
    // the tenants' samples can be equal; the central's tenant 0 holds at
    // least the agent's.
    let local = samples(&p.agent);
    let central = samples(&p.central);
    assert_eq!(
        tenants(&central),
        tenants(&local),
        "the central's samples differ from the agent's"
    );
    for l in local.iter().filter(|s| s.key.tenant.0 == 0) {
        let c = central
            .iter()
            .find(|c| c.slot == l.slot && c.key == l.key)
            .unwrap_or_else(|| panic!("the agent's {l:?} is missing on the central"));
        assert!(
            c.bytes >= l.bytes && c.packets >= l.packets,
            "{c:?} < {l:?}"
        );
    }
    assert_eq!(national_down(&local), 1700 * FRAME);
}

/// A late flow record's sample: `bytes` more to tenant 1 from the
/// national realm in `slot` (or, with `source_flows`, under its own key).
fn late(local: &[Sample], slot: Slot, bytes: u64, new_key: bool) -> Sample {
    let mut s = *local
        .iter()
        .find(|s| {
            s.slot == slot
                && s.key.tenant.0 == 1
                && s.key.realm.0 == 1
                && s.key.direction == accounting::Direction::Down
        })
        .expect("the slot's tenant sample");
    if new_key {
        s.key.source = accounting::Source::Flow;
    }
    s.bytes = bytes;
    s.packets = bytes / 1000;
    s
}

#[test]
fn samples_added_to_a_shipped_slot_reach_the_central_once_across_a_restart() {
    if !testkit::root("samples_added_to_a_shipped_slot_reach_the_central_once_across_a_restart") {
        return;
    }
    needs();
    let p = Pair::new("tgal");
    let (skew, slot) = skew_before_boundary(jiff::Timestamp::now().as_second());
    let central = p.start_central(skew);
    let agent = p.start_agent(skew);
    p.send(500);
    let first = slot.0 as u64 * SEQUENCES_PER_SLOT;
    wait_for("the slot shipped", Duration::from_secs(60), || {
        p.standing().is_some_and(|s| s >= first)
    });
    p.wait_equal("the slot shipped");

    // Flow records land in the shipped slot: more bytes on a key it had,
    // and a key it did not have; the link to the central is cut while
    // they wait (the agent says so in its status), then restored.
    let local = samples(&p.agent);
    sh(&format!("ip -n {} link set ctl0 down", p.agent.host));
    p.add_flows(
        1,
        &[
            late(&local, slot, 7_000, false),
            late(&local, slot, 3_000, true),
        ],
    );
    let shipping = || {
        std::fs::read_to_string(p.agent.state_dir().join("shipping-status.json"))
            .unwrap_or_default()
    };
    wait_for("the cut link noticed", Duration::from_secs(20), || {
        shipping().contains("cannot reach the central")
    });
    assert!(
        shipping().contains(&format!("\"pending\": {}", first + 1)),
        "{}",
        shipping()
    );
    sh(&format!("ip -n {} link set ctl0 up", p.agent.host));
    p.wait_equal("the first late samples");
    assert_eq!(p.standing(), Some(first + 1));

    // A restart ships nothing again, and a later record still goes once.
    let log = agent.log();
    assert!(agent.stop().success(), "{log}");
    let agent = p.start_agent(skew);
    p.add_flows(2, &[late(&local, slot, 11_000, false)]);
    p.wait_equal("the late samples after a restart");
    assert_eq!(p.standing(), Some(first + 2));
    let log = agent.log();
    assert!(log.contains("samples added to shipped slots"), "{log}");
    assert!(agent.stop().success(), "{log}");
    let log = central.log();
    assert!(central.stop().success(), "{log}");
    let local = samples(&p.agent);
    assert_eq!(
        national_down(&tenants(&local)),
        500 * FRAME + 7_000 + 3_000 + 11_000
    );
    assert_eq!(tenants(&samples(&p.central)), tenants(&local));
}

/// A proxy in the agent's namespace on 127.0.0.1:9190 to the central: it
/// forwards each request at once (so the central commits the batch), and
/// while the file `hold` exists in its folder it holds a POST's answer for
/// 8 s, saying `holding` in `proxy.log` first: the batch is in flight.
/// While the file `refuse` exists it answers a POST itself with 422 (a
/// central that refuses the batch's content), saying `refused`.
const PROXY: &str = r#"
import os, socket, sys, threading, time
folder = sys.argv[1]
def log(line):
    with open(os.path.join(folder, "proxy.log"), "a") as f:
        f.write(line + "\n")
def serve(c):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                return
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        length = 0
        kept = []
        for l in lines[1:]:
            name = l.split(b":", 1)[0].strip().lower()
            if name == b"content-length":
                length = int(l.split(b":", 1)[1])
            if name != b"connection":
                kept.append(l)
        while len(body) < length:
            body += c.recv(65536)
        if lines[0].startswith(b"POST") and os.path.exists(os.path.join(folder, "refuse")):
            text = b'{"title":"refused","detail":"the history refused the batch: test"}'
            c.sendall(b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(text) + text)
            log("refused")
            return
        up = socket.create_connection(("192.0.2.10", 9188))
        up.sendall(b"\r\n".join([lines[0]] + kept + [b"Connection: close"]) + b"\r\n\r\n" + body)
        answer = b""
        while True:
            chunk = up.recv(65536)
            if not chunk:
                break
            answer += chunk
        up.close()
        if lines[0].startswith(b"POST") and os.path.exists(os.path.join(folder, "hold")):
            log("holding")
            time.sleep(8)
        c.sendall(answer)
        log("answered")
    except Exception as e:
        log("broken: %s" % e)
    finally:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 9190))
s.listen(16)
deadline = time.time() + 120
s.settimeout(1)
while time.time() < deadline:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// A child process killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (at most 40 s: the box may be busy) for a daemon that crashes on
/// purpose to be gone.
fn wait_gone(d: &mut Daemon) {
    wait_for("the agent gone", Duration::from_secs(40), || !d.running());
}

#[test]
fn an_agent_killed_mid_shipping_loses_nothing_and_counts_nothing_twice() {
    if !testkit::root("an_agent_killed_mid_shipping_loses_nothing_and_counts_nothing_twice") {
        return;
    }
    needs();
    let p = Pair::with_url("tgak", "http://127.0.0.1:9190");
    let _proxy = Child(
        Command::new("ip")
            .args(["netns", "exec", &p.agent.host, "python3", "-c", PROXY])
            .arg(&p.agent.dir)
            .spawn()
            .unwrap(),
    );
    let proxy_log = || std::fs::read_to_string(p.agent.dir.join("proxy.log")).unwrap_or_default();
    std::fs::write(p.agent.dir.join("hold"), "").unwrap();
    let (skew, slot) = skew_before_boundary(jiff::Timestamp::now().as_second());
    let central = p.start_central(skew);
    let mut agent = p.start_agent(skew);
    p.send(400);

    // 1. kill -9 while the slot's batch is in flight: the central has
    //    committed it, the agent never hears so.
    wait_for("the batch in flight", Duration::from_secs(60), || {
        proxy_log().contains("holding")
    });
    agent.signal("-KILL");
    wait_gone(&mut agent);
    std::fs::remove_file(p.agent.dir.join("hold")).unwrap();
    let first = slot.0 as u64 * SEQUENCES_PER_SLOT;
    assert_eq!(p.standing(), Some(first));
    let ledger: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p.agent.state_dir().join("shipping-ledger.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(ledger["pending"]["sequence"], first, "{ledger}");

    // 2. Restarted, it learns that the batch landed and sends it no more;
    //    then it dies after saving the next batch (late flow samples) and
    //    before sending it.
    let mut agent = p.start_agent_env(skew, &[("TOLLGATE_CRASH_AT", "ship-saved")]);
    wait_for("the agent's standing", Duration::from_secs(15), || {
        agent.log().matches("the central's standing").count() >= 2
    });
    let local = samples(&p.agent);
    p.add_flows(1, &[late(&local, slot, 9_000, false)]);
    wait_gone(&mut agent);
    assert!(agent.log().contains("ship-saved: crashing here on purpose"));
    assert_eq!(p.standing(), Some(first));

    // 3. Restarted again, it sends the saved batch: once.
    let agent = p.start_agent(skew);
    p.wait_equal("after the crashes");
    assert_eq!(p.standing(), Some(first + 1));

    // 4. A batch the central refuses for its content is parked, shown in
    //    `status`, and the next one goes on.
    std::fs::write(p.agent.dir.join("refuse"), "").unwrap();
    p.add_flows(2, &[late(&local, slot, 2_000, false)]);
    wait_for("the batch refused", Duration::from_secs(20), || {
        proxy_log().contains("refused")
    });
    std::fs::remove_file(p.agent.dir.join("refuse")).unwrap();
    let status = |site: &Site| -> serde_json::Value {
        let o = tollgate_in(site, &["status", "--json", "--interval", "100ms"], skew);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    wait_for("the batch parked", Duration::from_secs(10), || {
        std::fs::read_to_string(p.agent.state_dir().join("shipping-status.json"))
            .is_ok_and(|t| t.contains("\"parked_total\": 1"))
    });
    p.add_flows(3, &[late(&local, slot, 5_000, false)]);
    wait_for("the next batch", Duration::from_secs(20), || {
        p.standing() == Some(first + 3)
    });
    let v = status(&p.agent);
    let shipping = &v["shipping"];
    assert_eq!(shipping["parked"][0]["sequence"], first + 2, "{v}");
    assert_eq!(shipping["parked"][0]["bytes"], 2_000, "{v}");
    assert!(
        shipping["parked"][0]["error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{v}"
    );
    assert_eq!(shipping["through"], slot.0, "{v}");
    assert_eq!(shipping["pending"], serde_json::Value::Null, "{v}");
    let text = tollgate_in(&p.agent, &["status", "--interval", "100ms"], skew);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("1 batch parked"), "{text}");
    let v = status(&p.central);
    let a = &v["agents"][0];
    assert_eq!(a["writer"], "hv1", "{v}");
    assert_eq!(a["last_slot"], slot.0, "{v}");
    // The first batch, the saved one and the last: 400 datagrams, 9,000
    // and 5,000 late bytes (the refused 2,000 never reached it).
    assert_eq!(a["batches"], 3, "{v}");
    assert!(a["lag_seconds"].as_i64().unwrap() < 120, "{v}");
    let log = agent.log();
    assert!(agent.stop().success(), "{log}");
    let log = central.log();
    assert!(central.stop().success(), "{log}");
    let local = samples(&p.agent);
    assert_eq!(
        national_down(&tenants(&local)),
        400 * FRAME + 9_000 + 2_000 + 5_000
    );
    // The central holds everything but the parked batch.
    assert_eq!(
        national_down(&tenants(&samples(&p.central))),
        400 * FRAME + 9_000 + 5_000
    );
    assert!(proxy_log().contains("holding"), "{}", proxy_log());
}

/// Makes a test CA and the central's certificate for 192.0.2.10 signed
/// by it (in the central's folder, `api.crt` and `api.key`), and a second
/// CA that signed nothing; the two CAs go to the agent's folder as
/// `ca.pem` and `wrong-ca.pem`.
fn certificates(p: &Pair) {
    testkit::need("openssl", "openssl");
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh(&format!(
        "set -e; cd {c}
        openssl req -x509 {ec} -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -x509 {ec} -days 1 -subj /CN=other-ca -keyout other.key -out other.pem 2>/dev/null
        openssl req {ec} -subj /CN=central -keyout api.key -out api.csr 2>/dev/null
        printf 'subjectAltName=IP:192.0.2.10\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > ext.cnf
        openssl x509 -req -in api.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out api.crt 2>/dev/null
        cp ca.pem {a}/ca.pem; cp other.pem {a}/wrong-ca.pem",
        c = p.central.dir.display(),
        a = p.agent.dir.display(),
    ));
    let policy = std::fs::read_to_string(p.central.policy_path()).unwrap();
    std::fs::write(
        p.central.policy_path(),
        format!("{policy}\n[api.tls]\ncertificate = \"api.crt\"\nkey = \"api.key\"\n"),
    )
    .unwrap();
}

/// Points the agent's `[central] ca` at `file`.
fn agent_ca(p: &Pair, file: &str) {
    let policy = std::fs::read_to_string(p.agent.policy_path()).unwrap();
    let policy = match policy.split_once("ca = ") {
        Some((head, _)) => format!("{head}ca = \"{file}\"\n"),
        None => format!("{policy}ca = \"{file}\"\n"),
    };
    std::fs::write(p.agent.policy_path(), policy).unwrap();
}

#[test]
fn an_agent_ships_over_https_and_a_wrong_ca_is_a_clear_error() {
    if !testkit::root("an_agent_ships_over_https_and_a_wrong_ca_is_a_clear_error") {
        return;
    }
    needs();
    let p = Pair::with_url("tgas", &format!("https://{CENTRAL_API}"));
    certificates(&p);
    let (skew, slot) = skew_before_boundary(jiff::Timestamp::now().as_second());
    let central = p.start_central(skew);

    // A CA that did not sign the central's certificate: refused, said in
    // the log and the status, and the daemon goes on.
    agent_ca(&p, "wrong-ca.pem");
    let mut agent = p.start_agent(skew);
    let shipping = || {
        std::fs::read_to_string(p.agent.state_dir().join("shipping-status.json"))
            .unwrap_or_default()
    };
    wait_for("the certificate refused", Duration::from_secs(15), || {
        shipping().contains("UnknownIssuer")
    });
    let log = agent.log();
    assert!(
        log.contains("cannot reach the central at https://192.0.2.10:9188")
            && log.contains("UnknownIssuer"),
        "{log}"
    );
    assert!(agent.running(), "{log}");
    let o = tollgate_in(&p.agent, &["status", "--interval", "100ms"], skew);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("error since") && text.contains("UnknownIssuer"),
        "{text}"
    );
    assert!(agent.stop().success(), "{log}");
    // Not a file of certificates: the daemon does not start, and says why.
    agent_ca(&p, "policy.toml");
    let o = tollgate_in(&p.agent, &["run", "--no-api"], skew);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("[central] ca") && err.contains("no certificate"),
        "{err}"
    );

    // The right CA: the slot ships over https, to the byte.
    agent_ca(&p, "ca.pem");
    let agent = p.start_agent(skew);
    p.send(300);
    wait_for("the slot shipped", Duration::from_secs(60), || {
        p.standing()
            .is_some_and(|s| s >= slot.0 as u64 * SEQUENCES_PER_SLOT)
    });
    p.wait_equal("over https");
    let log = agent.log();
    assert!(agent.stop().success(), "{log}");
    let log = central.log();
    assert!(central.stop().success(), "{log}");
    assert_eq!(national_down(&tenants(&samples(&p.central))), 300 * FRAME);
}

#[test]
fn a_tenant_whose_vm_moved_between_agents_gets_one_bill_on_the_central() {
    if !testkit::root("a_tenant_whose_vm_moved_between_agents_gets_one_bill_on_the_central") {
        return;
    }
    needs();
    // Agent A (hv1) and the central, as in the other tests; agent B (hv2)
    // is a third router with the same tenant, reaching the central over
    // its own veth pair.
    let p = Pair::new("tgmv");
    let b = Site::build("tgmv", "b", 1);
    sh(&format!(
        "set -e
        ip link add ctl1 netns {b} type veth peer name ctl1 netns {c}
        ip -n {b} addr add 192.0.2.13/30 dev ctl1; ip -n {c} addr add 192.0.2.14/30 dev ctl1
        ip -n {b} link set ctl1 up; ip -n {c} link set ctl1 up
        ip -n {b} route add 192.0.2.10/32 via 192.0.2.14",
        b = b.host,
        c = p.central.host
    ));
    std::fs::write(b.dir.join("accounting.toml"), "").unwrap();
    std::fs::copy(
        p.agent.dir.join("central.token"),
        b.dir.join("central.token"),
    )
    .unwrap();
    let agent_policy = std::fs::read_to_string(p.agent.policy_path()).unwrap();
    std::fs::write(b.policy_path(), agent_policy.replace("\"hv1\"", "\"hv2\"")).unwrap();
    // The central bills t1 on a commit, so that its bill counts volume.
    let central_policy = std::fs::read_to_string(p.central.policy_path()).unwrap();
    std::fs::write(
        p.central.policy_path(),
        central_policy.replace(
            "prefixes = [\"100.64.1.0/24\"]\n",
            "prefixes = [\"100.64.1.0/24\"]\ncommit = \"1mbit\"\n",
        ),
    )
    .unwrap();

    // A lives in slot S, B one slot later (or earlier, at a month's end:
    // both in one billing period): the VM ran on A, then on B.
    let (skew, slot_a) = skew_before_boundary(jiff::Timestamp::now().as_second());
    let month = |s: Slot| s.start().to_string()[..7].to_string();
    let step = if month(slot_a) == month(Slot(slot_a.0 + 1)) {
        1
    } else {
        -1
    };
    let slot_b = Slot(slot_a.0 + step);
    let skew_b = skew + step * 300;
    let central = p.start_central(skew);
    let a = p.start_agent(skew);
    let agent_b = b.start_daemon_env(
        &b.dir.join("accounting.toml"),
        &["--no-api"],
        &[("TOLLGATE_CLOCK_SKEW", &skew_b.to_string())],
    );
    send_to_tenant(&p.agent, 600);
    send_to_tenant(&b, 400);
    let standing = |writer: &str| -> Option<u64> {
        let (status, body) = p.call(
            "GET",
            &format!("/api/v1/agents/{writer}"),
            "central.token",
            None,
        );
        (status == 200)
            .then(|| serde_json::from_str::<serde_json::Value>(&body).unwrap()["sequence"].as_u64())
            .flatten()
    };
    wait_for("both slots shipped", Duration::from_secs(60), || {
        standing("hv1").is_some_and(|s| s >= slot_a.0 as u64 * SEQUENCES_PER_SLOT)
            && standing("hv2").is_some_and(|s| s >= slot_b.0 as u64 * SEQUENCES_PER_SLOT)
    });
    let bill = tollgate_in(&p.central, &["bill", "--json", "t1"], skew);
    assert!(
        bill.status.success(),
        "{}",
        String::from_utf8_lossy(&bill.stderr)
    );
    let bill: serde_json::Value = serde_json::from_slice(&bill.stdout).unwrap();
    for (d, what) in [
        (a, "agent A"),
        (agent_b, "agent B"),
        (central, "the central"),
    ] {
        let log = d.log();
        assert!(d.stop().success(), "{what}: {log}");
    }

    // The central's t1 is the sum of both agents' t1, to the byte, in one
    // bill.
    let t1 = |site: &Site| -> Vec<Sample> {
        samples(site)
            .into_iter()
            .filter(|s| s.key.tenant.0 == 1)
            .collect()
    };
    let (on_a, on_b, on_central) = (t1(&p.agent), t1(&b), t1(&p.central));
    assert!(on_a.iter().all(|s| s.slot == slot_a), "{on_a:?}");
    assert!(on_b.iter().all(|s| s.slot == slot_b), "{on_b:?}");
    let mut both: Vec<Sample> = on_a.iter().chain(&on_b).copied().collect();
    both.sort_by_key(|s| (s.slot, s.key));
    assert_eq!(on_central, both);
    let sum = |v: &[Sample]| v.iter().map(|s| s.bytes).sum::<u64>();
    assert_eq!(national_down(&on_a), 600 * FRAME);
    assert_eq!(national_down(&on_b), 400 * FRAME);
    let bills = bill["bills"].as_array().unwrap();
    assert_eq!(bills.len(), 1, "{bill}");
    let used = bills[0]["bill"]["lines"][0]["volume"]["used"]
        .as_u64()
        .unwrap();
    assert_eq!(used, sum(&on_a) + sum(&on_b), "{bill}");
}
