//! The fleet's Braiins OS devices serve their REST API on the web port (80, as real ones do),
//! attached to the RPC device: a login with the device's factory password gets a token, the
//! other factory password is refused with 401, a power target set over REST shows in the 4028
//! `tunerstatus`, and an offline device serves neither port.

use hashmesh_sim::faults::FaultPlan;
use hashmesh_sim::fleet::{self, FleetEntry, FleetFamily, FleetSpec, RunningEntry, RunningWeb};
use hashmesh_sim::{Family, Timing};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request with `Connection: close`: (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let connect = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await;
    let Ok(Ok(mut s)) = connect else {
        return (0, String::new());
    };
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = auth {
        req.push_str(&format!("Authorization: {token}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// One cgminer-style JSON request on the RPC port, read to EOF.
async fn rpc(addr: SocketAddr, command: &str) -> String {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
    else {
        return String::new();
    };
    let req = format!("{{\"command\":\"{command}\"}}");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out)
        .trim_end_matches('\0')
        .to_owned()
}

fn login_body(password: &str) -> String {
    serde_json::json!({"username": "root", "password": password}).to_string()
}

#[tokio::test]
async fn braiins_devices_serve_rest_on_the_web_port() {
    // The real ports: RPC 4028 and web 80, on addresses of their own.
    let mut spec = FleetSpec::new(12, Ipv4Addr::new(127, 67, 0, 1));
    spec.mix = fleet::parse_mix("braiins=3,antminer=1").unwrap_or_else(|e| panic!("{e}"));
    spec.timing = Timing::fast();
    spec.meters_per_container = 0;
    let offline_ip = (0..spec.devices)
        .map(|i| spec.device(i))
        .find(|d| d.family == FleetFamily::Rpc(Family::Braiins))
        .map(|d| d.ip)
        .unwrap_or_else(|| panic!("no Braiins device in the fleet"));
    spec.faults = FaultPlan::parse(&format!("{offline_ip}=offline")).unwrap_or_default();
    assert_eq!((spec.port, spec.web_port), (4028, 80));
    let running = fleet::spawn_range(&spec, 0..spec.entries())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut checked = 0;
    let mut passwords = std::collections::BTreeSet::new();
    for (i, entry) in running.iter().enumerate() {
        let FleetEntry::Miner(d) = spec.entry(i) else {
            continue;
        };
        if d.family != FleetFamily::Rpc(Family::Braiins) {
            continue;
        }
        assert_eq!(d.web_port, Some(80), "{d:?}");
        assert_eq!(d.listeners(), 2);
        let web = SocketAddr::new(d.ip.into(), 80);
        let rpc_addr = SocketAddr::new(d.ip.into(), 4028);
        if d.ip == offline_ip {
            assert!(
                matches!(entry, RunningEntry::Rpc(_, None)),
                "an offline device serves no REST API"
            );
            assert_eq!(
                http(web, "POST", "/api/v1/auth/login", None, "{}").await.0,
                0
            );
            continue;
        }
        match entry {
            RunningEntry::Rpc(_, Some(RunningWeb::Braiins(w))) => assert_eq!(w.local_addr(), web),
            _ => panic!("{d:?}: no Braiins REST API attached"),
        }
        // The RPC still names the firmware, as a scan's first probe sees it.
        assert!(rpc(rpc_addr, "version").await.contains("BOSer"));

        let password = fleet::braiins_password(&d);
        passwords.insert(password);
        let other = if password.is_empty() { "root" } else { "" };
        let (status, _) = http(web, "POST", "/api/v1/auth/login", None, &login_body(other)).await;
        assert_eq!(
            status, 401,
            "{d:?}: the other factory password must be refused"
        );
        let (status, body) = http(
            web,
            "POST",
            "/api/v1/auth/login",
            None,
            &login_body(password),
        )
        .await;
        assert_eq!(status, 200, "{d:?}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let token = v["token"].as_str().unwrap_or_default().to_owned();
        assert!(!token.is_empty(), "{body}");
        assert_eq!(
            http(web, "GET", "/api/v1/actions/locate", None, "").await.0,
            401,
            "no token, no answer"
        );

        // A write over REST reaches the device the RPC reports on.
        let (status, body) = http(
            web,
            "GET",
            "/api/v1/configuration/constraints",
            Some(&token),
            "",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let min = v["tuner_constraints"]["power_target"]["min"]["watt"]
            .as_u64()
            .unwrap_or_else(|| panic!("no min in {body}"));
        let want = min + 111;
        let (status, body) = http(
            web,
            "PUT",
            "/api/v1/performance/power-target",
            Some(&token),
            &format!("{{\"watt\":{want}}}"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let tuner = rpc(rpc_addr, "tunerstatus").await;
        assert!(tuner.contains(&want.to_string()), "{want} W not in {tuner}");
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} Braiins devices checked");
    assert_eq!(
        passwords.len(),
        2,
        "both factory passwords appear: {passwords:?}"
    );
}
