//! The API over real HTTP against a node managing a simulated fleet: logins and roles, the
//! device table's filters and sorts, one device in full, history, a command carried out and
//! verified, the site map, the OpenAPI document, live frames over WebSocket, and bad input.

use hashmesh_node::auth::{AuthStore, Role};
use hashmesh_node::config::Config;
use hashmesh_node::{Node, discovery};
use hashmesh_sim::fleet::{self, FleetSpec};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "correct horse battery";

struct Api {
    base: String,
    http: reqwest::Client,
}

struct Login {
    cookie: String,
    csrf: String,
}

impl Api {
    async fn login(&self, user: &str) -> Login {
        let r = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "login {user}");
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_owned();
        let body: Value = r.json().await.unwrap();
        Login {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn call(
        &self,
        who: Option<&Login>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(l) = who {
            req = req
                .header("cookie", &l.cookie)
                .header("x-csrf-token", &l.csrf);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, who: &Login, path: &str) -> Value {
        let (s, v) = self.call(Some(who), Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }
}

async fn wait_for(what: &str, secs: u64, mut ok: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !ok().await {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_a_simulated_fleet() {
    let mut spec = FleetSpec::new(30, Ipv4Addr::new(127, 75, 0, 1));
    spec.port = 24028;
    spec.web_port = 24080;
    spec.v3_port = 4433;
    spec.meters_per_container = 0;
    spec.timing = hashmesh_sim::Timing::fast();
    spec.mix = fleet::parse_mix("antminer=2,avalon=1,braiins=1").unwrap();
    spec.faults =
        hashmesh_sim::faults::FaultPlan::parse("127.75.0.3=offline,127.75.0.4=offline").unwrap();
    let running = fleet::spawn_range(&spec, 0..spec.entries()).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let users = AuthStore::open_in(dir.path()).unwrap();
    users.add_user("vera", PASSWORD, Role::Viewer, 0).unwrap();
    users.add_user("otto", PASSWORD, Role::Operator, 0).unwrap();
    drop(users);
    let mut c = Config {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    c.discovery.ranges = vec!["127.75.0.0/24".parse().unwrap()];
    c.discovery.interval_s = 0;
    c.discovery.rpc_port = 24028;
    c.discovery.web_port = 24080;
    c.poll.interval_s = 1.0;
    c.poll.timeout_ms = 800;
    c.poll.offline_backoff_max_s = 2.0;
    let node = Node::start(c).await.unwrap();
    discovery::scan_once(node.inner()).await.unwrap();
    let api = Api {
        base: format!("http://{}", node.local_addr()),
        http: reqwest::Client::new(),
    };

    // Reads need a login.
    let (s, v) = api.call(None, Method::GET, "/api/v1/devices", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, _) = api.call(None, Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let vera = api.login("vera").await;
    let otto = api.login("otto").await;

    // The table fills in as the poller reads every device.
    wait_for("every device polled", 30, async || {
        let v = api.get(&vera, "/api/v1/devices?status=unknown").await;
        v["matched"] == 0
    })
    .await;
    let all = api.get(&vera, "/api/v1/devices?limit=100").await;
    assert_eq!(all["total"], 28);
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 28);
    let ips: Vec<&str> = items.iter().map(|r| r["ip"].as_str().unwrap()).collect();
    let mut sorted = ips.clone();
    sorted.sort_by_key(|ip| ip.parse::<std::net::IpAddr>().unwrap());
    assert_eq!(ips, sorted, "default order is by address");

    // Summary agrees with the table (two code paths over live state; the table is rebuilt in
    // the background about once a second, so the devices may have been polled in between).
    let summary = api.get(&vera, "/api/v1/fleet/summary").await;
    let table_sum: f64 = items
        .iter()
        .filter_map(|r| r["hashrate_ths"].as_f64())
        .sum();
    let summary_sum = summary["hashrate_ths"].as_f64().unwrap();
    assert!(summary_sum > 100.0);
    assert!(
        (summary_sum - table_sum).abs() < 0.05 * summary_sum,
        "{summary_sum} vs {table_sum}"
    );
    assert_eq!(summary["devices"], 28);

    // Filters and sorts.
    let mining = api
        .get(
            &vera,
            "/api/v1/devices?status=mining,degraded&sort=hashrate_ths&order=desc&limit=5",
        )
        .await;
    let hs: Vec<f64> = mining["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hashrate_ths"].as_f64().unwrap())
        .collect();
    assert_eq!(hs.len(), 5);
    assert!(hs.windows(2).all(|w| w[0] >= w[1]), "{hs:?}");
    let prefix = api.get(&vera, "/api/v1/devices?ip=127.75.0.1").await;
    // 127.75.0.1, .10 … .19 — but .3/.4 were offline at discovery and are not in the table.
    assert_eq!(prefix["matched"], 11);
    let avalons = api.get(&vera, "/api/v1/devices?family=avalon").await;
    assert!(
        avalons["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["family"] == "avalon")
    );
    assert!(avalons["matched"].as_u64().unwrap() > 0);

    // Bad filters are 400s that name the parameter.
    for (path, word) in [
        ("/api/v1/devices?status=minning", "status"),
        ("/api/v1/devices?sort=colour", "sort"),
        ("/api/v1/devices?limit=999999", "limit"),
        ("/api/v1/devices?order=up", "order"),
        ("/api/v1/devices?colour=red", "colour"),
        ("/api/v1/devices?limit=-1", "limit"),
        ("/api/v1/fleet/history?metric=hashrate&range=1h", "metric"),
        (
            "/api/v1/fleet/history?metric=hashrate_ths&range=1y",
            "range",
        ),
        (
            "/api/v1/fleet/history?metric=hashrate_ths&agg=median",
            "agg",
        ),
    ] {
        let (s, v) = api.call(Some(&vera), Method::GET, path, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(word), "{path}: {detail}");
    }

    // One device in full, and its history.
    let id = items[0]["id"].as_str().unwrap().to_owned();
    let d = api.get(&vera, &format!("/api/v1/devices/{id}")).await;
    assert_eq!(d["info"]["id"], id.as_str());
    assert!(!d["snapshot"]["boards"].as_array().unwrap().is_empty());
    assert_eq!(d["ip_history"].as_array().unwrap().len(), 1);
    let (s, _) = api
        .call(Some(&vera), Method::GET, "/api/v1/devices/nope", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    wait_for("history", 20, async || {
        let h = api
            .get(
                &vera,
                &format!("/api/v1/devices/{id}/history?metric=hashrate_ths&range=1h"),
            )
            .await;
        h["points"].as_array().unwrap().len() >= 2
    })
    .await;
    let fleet = api
        .get(
            &vera,
            "/api/v1/fleet/history?metric=hashrate_ths&agg=sum&range=1h",
        )
        .await;
    assert_eq!(fleet["resolution"], "1m");
    let last = fleet["points"].as_array().unwrap().last().unwrap()[1]
        .as_f64()
        .unwrap();
    assert!(last > 0.3 * summary_sum, "{last} vs {summary_sum}");

    // Commands: a viewer may not, an operator may, with the CSRF header.
    let led = json!({"command": "locate_led", "on": true});
    let target = items
        .iter()
        .find(|r| r["family"] == "avalon" && r["status"] == "mining")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/devices/{target}/commands");
    let (s, _) = api
        .call(Some(&vera), Method::POST, &path, Some(led.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let no_csrf = Login {
        cookie: otto.cookie.clone(),
        csrf: "wrong".into(),
    };
    let (s, _) = api
        .call(Some(&no_csrf), Method::POST, &path, Some(led.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = api.call(Some(&otto), Method::POST, &path, Some(led)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let job = v["job_id"].as_u64().unwrap();
    let mut outcome = Value::Null;
    wait_for("the command's outcome", 60, async || {
        outcome = api.get(&vera, &format!("/api/v1/jobs/{job}")).await;
        outcome["state"] == "done"
    })
    .await;
    assert_eq!(outcome["results"][0]["result"], "confirmed", "{outcome}");
    assert_eq!(outcome["requested_by"], "otto");

    // Bad command bodies.
    for (body, word) in [
        (json!({"command": "explode"}), "explode"),
        (
            json!({"command": "set_power_target", "power_w": "lots"}),
            "lots",
        ),
        (
            json!({"devices": [], "command": {"command": "reboot"}}),
            "devices",
        ),
    ] {
        let p = if body.get("devices").is_some() {
            "/api/v1/commands"
        } else {
            path.as_str()
        };
        let (s, v) = api.call(Some(&otto), Method::POST, p, Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["detail"].as_str().unwrap_or_default().contains(word),
            "{v}"
        );
    }
    let r = api
        .http
        .post(format!("{}{path}", api.base))
        .header("cookie", &otto.cookie)
        .header("x-csrf-token", &otto.csrf)
        .header("content-type", "application/json")
        .body("{\"command\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = api
        .http
        .post(format!("{}/api/v1/commands", api.base))
        .header("cookie", &otto.cookie)
        .header("x-csrf-token", &otto.csrf)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // The site map places devices once the inventory knows where they stand.
    let map = api.get(&vera, "/api/v1/sitemap").await;
    assert_eq!(map["unplaced"], 28);
    let csv: String = std::iter::once("ip,site,container,rack,shelf,slot\n".to_owned())
        .chain(items.iter().enumerate().map(|(i, r)| {
            format!(
                "{},A,C01,R{},{},{}\n",
                r["ip"].as_str().unwrap(),
                i / 10 + 1,
                i % 10 / 5 + 1,
                i % 5 + 1
            )
        }))
        .collect();
    let report = node
        .inner()
        .inventory
        .import_locations_csv(csv.as_bytes())
        .unwrap();
    assert_eq!(report.updated, 28);
    node.inner().reload_inventory().unwrap();
    // The device table behind the map is refreshed in the background about once a second.
    let mut map = Value::Null;
    wait_for("the site map to place every device", 10, async || {
        map = api.get(&vera, "/api/v1/sitemap").await;
        map["unplaced"] == 0
    })
    .await;
    let racks = map["sites"][0]["containers"][0]["racks"]
        .as_array()
        .unwrap();
    assert_eq!(racks.len(), 3);
    assert_eq!(racks[0]["shelves"], 2);
    assert_eq!(racks[0]["slots"], 5);
    let summary = api.get(&vera, "/api/v1/fleet/summary").await;
    let rack_rows = summary["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["level"] == "rack")
        .count();
    assert_eq!(rack_rows, 3);

    // Large JSON is gzipped for clients that accept it.
    let r = api
        .http
        .get(format!("{}/api/v1/devices?limit=1000", api.base))
        .header("cookie", &vera.cookie)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("content-encoding").unwrap(), "gzip");

    // The OpenAPI document lists the routes.
    let (s, doc) = api.call(None, Method::GET, "/api/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    for p in [
        "/api/v1/devices",
        "/api/v1/devices/{id}",
        "/api/v1/fleet/summary",
        "/api/v1/jobs/{id}",
        "/api/v1/auth/login",
        "/api/v1/tokens/{id}",
    ] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from the OpenAPI document"
        );
    }

    // Live frames over WebSocket.
    let frame = ws_first_frame(node.local_addr(), &vera.cookie).await;
    let v: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(v["type"], "summary");
    assert_eq!(v["data"]["devices"], 28);

    node.shutdown().await;
    drop(running);
}

/// Opens `/api/v1/ws` by hand and returns the first text frame.
async fn ws_first_frame(addr: std::net::SocketAddr, cookie: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.unwrap();
    assert_eq!(h[0] & 0x0f, 1, "a text frame");
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.unwrap();
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).await.unwrap();
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    String::from_utf8(body).unwrap()
}
