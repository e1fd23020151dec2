//! A fleet of every family started over real sockets: each device answers at each of its
//! ports, and an offline device at none.

use hashmesh_sim::faults::FaultPlan;
use hashmesh_sim::fleet::{self, FleetEntry, FleetFamily, FleetSpec, RunningEntry};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connects(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Sends `request` and reads until the peer closes or 64 KiB arrived.
async fn ask(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
    else {
        return Vec::new();
    };
    if s.write_all(request).await.is_err() {
        return Vec::new();
    }
    let mut buf = vec![0u8; 65536];
    let mut got = 0;
    while got < buf.len() {
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf[got..])).await {
            Ok(Ok(n)) if n > 0 => got += n,
            _ => break,
        }
        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") && buf[..got].ends_with(b"}") {
            break;
        }
    }
    buf.truncate(got);
    buf
}

#[tokio::test]
async fn every_family_answers_at_its_ports() {
    let base = Ipv4Addr::new(127, 64, 0, 1);
    let mut spec = FleetSpec::new(300, base);
    spec.port = 24028;
    spec.web_port = 24080;
    spec.v3_port = 24433;
    spec.modbus_port = 25020;
    spec.timing = hashmesh_sim::Timing::fast();
    spec.faults = FaultPlan::parse("127.64.0.9=offline").unwrap_or_default();
    let running = fleet::spawn_range(&spec, 0..spec.entries())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(running.len(), 302);

    let mut seen = std::collections::BTreeSet::new();
    for i in 0..spec.entries() {
        match spec.entry(i) {
            FleetEntry::Miner(d) => {
                seen.insert(d.family.as_str());
                let offline = d.ip == Ipv4Addr::new(127, 64, 0, 9);
                assert_eq!(offline, d.faults.contains(&hashmesh_sim::Fault::Offline));
                let at = |port| SocketAddr::new(d.ip.into(), port);
                assert_eq!(connects(at(d.port)).await, !offline, "{d:?}");
                if let Some(p) = d.web_port {
                    assert_eq!(connects(at(p)).await, !offline, "{d:?}");
                }
                if let Some(p) = d.v3_port {
                    assert_eq!(connects(at(p)).await, !offline, "{d:?}");
                }
                if d.family == FleetFamily::Bitaxe && !offline {
                    let reply = ask(
                        at(d.port),
                        b"GET /api/system/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                    let text = String::from_utf8_lossy(&reply);
                    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
                    assert!(text.contains(&d.mac), "{d:?}: {text}");
                }
            }
            FleetEntry::Meter(m) => {
                seen.insert("meter");
                assert!(connects(SocketAddr::new(m.ip.into(), m.modbus_port)).await);
                // FC 03 read of one register at an address no map has: a Modbus reply
                // (exception or data) with our transaction id and the meter's unit id.
                let req = [0x12, 0x34, 0, 0, 0, 6, m.unit_id, 3, 0, 0, 0, 1];
                let reply = ask(SocketAddr::new(m.ip.into(), m.modbus_port), &req).await;
                assert!(reply.len() >= 9, "{reply:?}");
                assert_eq!((reply[0], reply[1], reply[6]), (0x12, 0x34, m.unit_id));
            }
        }
    }
    for family in ["antminer", "whatsminer", "bitaxe", "avalon", "meter"] {
        assert!(seen.contains(family), "{family} missing: {seen:?}");
    }
    let offline = running
        .iter()
        .filter(|r| matches!(r, RunningEntry::Offline))
        .count();
    assert!(offline <= 1);
}
