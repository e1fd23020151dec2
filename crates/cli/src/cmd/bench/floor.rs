//! The transport floor of this machine: a minimal cgminer-style server (`hashmesh bench
//! floor-server`, started as a child process so its CPU is not counted) and a minimal client
//! (connect, one write, read to EOF, close: no deadlines, no socket options, no parsing).
//!
//! `hashmesh bench poll --family floor` polls the one with the other, so every driver figure
//! can be read against what one TCP exchange costs here at the least.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Options of the hidden `hashmesh bench floor-server`.
#[derive(clap::Args)]
pub struct FloorServerArgs {
    /// Listeners to open, one per loopback address from `--base`.
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,
    /// First loopback address.
    #[arg(long, default_value = "127.40.0.1")]
    pub base: Ipv4Addr,
    /// Port of every listener.
    #[arg(long, default_value_t = 4028)]
    pub port: u16,
    /// Size of the reply, in bytes (the NUL terminator included).
    #[arg(long, default_value_t = DEFAULT_REPLY_BYTES)]
    pub reply_bytes: usize,
}

/// The reply size the floor uses unless told otherwise: a simulated Antminer's
/// `summary+stats+pools` reply is 5.0–5.6 KB, cgminer's `summary+pools+devs` 5.7 KB.
pub const DEFAULT_REPLY_BYTES: usize = 5_600;

/// The request the floor client sends (what the generic cgminer driver sends).
pub const FLOOR_REQUEST: &[u8] = br#"{"command":"summary+pools+devs"}"#;

/// A cgminer-style multi-command reply of at least `bytes` bytes, NUL-terminated: a summary
/// section and as many pool records as it takes.
pub fn floor_reply(bytes: usize) -> Vec<u8> {
    let status =
        r#"{"STATUS":"S","When":1718000000,"Code":11,"Msg":"Summary","Description":"floor 1.0"}"#;
    let mut out = format!(
        r#"{{"summary":[{{"STATUS":[{status}],"SUMMARY":[{{"Elapsed":5400,"MHS av":95012345.67,"MHS 5s":95123456.78,"Accepted":812,"Rejected":3,"Hardware Errors":12}}],"id":1}}],"pools":[{{"STATUS":[{status}],"POOLS":["#
    )
    .into_bytes();
    let tail = br#"],"id":1}],"id":1}"#;
    let mut i = 0;
    while out.len() + tail.len() + 1 < bytes || i == 0 {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(
            format!(
                r#"{{"POOL":{i},"URL":"stratum+tcp://pool{i}.example.invalid:3333","Status":"Alive","Priority":{i},"Accepted":{},"Rejected":{},"Stale":0,"User":"worker.{i}","Stratum Active":{}}}"#,
                800 + i,
                i,
                i == 0
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.extend_from_slice(tail);
    out.push(0);
    out
}

/// The `n` consecutive loopback addresses from `base`, skipping `.0` and `.255` host bytes.
pub fn addresses(base: Ipv4Addr, n: usize) -> Vec<Ipv4Addr> {
    let mut out = Vec::with_capacity(n);
    let mut ip = u32::from(base);
    while out.len() < n {
        let last = ip & 0xff;
        if last != 0 && last != 255 {
            out.push(Ipv4Addr::from(ip));
        }
        ip = ip.wrapping_add(1);
    }
    out
}

/// Runs the floor server until killed: prints `ready <n>` once every listener is bound.
pub async fn serve(args: FloorServerArgs) -> anyhow::Result<()> {
    if !args.base.is_loopback() {
        anyhow::bail!("the floor server binds loopback addresses only");
    }
    let reply: Arc<[u8]> = floor_reply(args.reply_bytes).into();
    let mut listeners = Vec::with_capacity(args.devices);
    for ip in addresses(args.base, args.devices) {
        let addr = SocketAddr::new(IpAddr::V4(ip), args.port);
        listeners.push(TcpListener::bind(addr).await?);
    }
    println!("ready {}", listeners.len());
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        let reply = reply.clone();
        tasks.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, reply.clone()));
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// What cgminer does with a connection: one read of the request, the reply, close.
async fn answer(mut stream: TcpStream, reply: Arc<[u8]>) {
    let mut request = [0u8; 4096];
    if matches!(stream.read(&mut request).await, Ok(n) if n > 0) {
        let _ = stream.write_all(&reply).await;
    }
    let _ = stream.shutdown().await;
}

/// One minimal exchange: connect, write, read to EOF, close. Returns the reply's length.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<usize> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut reply = Vec::with_capacity(16 * 1024);
    stream.read_to_end(&mut reply).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_is_json_of_the_asked_size() {
        let reply = floor_reply(DEFAULT_REPLY_BYTES);
        assert!(reply.len() >= DEFAULT_REPLY_BYTES && reply.len() < DEFAULT_REPLY_BYTES + 400);
        assert_eq!(reply.last(), Some(&0));
        let json: serde_json::Value =
            serde_json::from_slice(&reply[..reply.len() - 1]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            json["pools"][0]["POOLS"]
                .as_array()
                .is_some_and(|p| p.len() > 10)
        );
    }

    #[test]
    fn addresses_skip_network_and_broadcast_bytes() {
        let ips = addresses(Ipv4Addr::new(127, 40, 0, 254), 3);
        assert_eq!(
            ips,
            vec![
                Ipv4Addr::new(127, 40, 0, 254),
                Ipv4Addr::new(127, 40, 1, 1),
                Ipv4Addr::new(127, 40, 1, 2)
            ]
        );
    }

    #[tokio::test]
    async fn client_reads_what_the_server_sends() {
        let listener = TcpListener::bind((Ipv4Addr::new(127, 39, 7, 1), 0))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let reply: Arc<[u8]> = floor_reply(2000).into();
        let expected = reply.len();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                answer(s, reply.clone()).await;
            }
        });
        for _ in 0..2 {
            let n = exchange(addr, FLOOR_REQUEST)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(n, expected);
        }
    }
}
