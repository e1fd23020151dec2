//! Simulated Modbus TCP power meters (PROTOCOLS.md §7): ABB B23/B24, Schneider PM5xxx and
//! Satec PM180 twins with a physical three-phase load behind them, a configurable unit id and
//! the faults real meters and gateways show.
//!
//! The Modbus TCP framing here is this crate's own (MBAP header, FC 03/04, exception replies),
//! deliberately not `tokio-modbus`'s server: the driver uses that library's client, and a codec
//! shared by both sides could hide a framing bug; it also lets faults break the frame itself.
//!
//! * [`load`] – the physics: power following a set-point, phases, PF, frequency, counters.
//! * [`registers`] – the register images of each model.
//!
//! Start one with [`spawn_meter`] and compare a driver's reading with [`RunningMeter::truth`].

pub mod load;
pub mod registers;

use hashmesh_core::MeterSnapshot;
use load::{Load, Physics};
use registers::{Image, SatecScales};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

/// Which meter to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MeterKind {
    /// ABB B23/B24.
    AbbB2x,
    /// Schneider PowerLogic PM5340 (PM5xxx map).
    SchneiderPm5xxx,
    /// Satec PM180 basic block, scaled by its configured ranges.
    SatecPm180 {
        /// The ranges raw 0…9999 spans.
        scales: SatecScales,
        /// Delta wiring: registers 256–258 hold line-to-line voltages.
        delta: bool,
    },
}

/// What can go wrong with a meter or the gateway in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeterFault {
    /// Every read answers this Modbus exception code (2 = illegal data address, 4 = device
    /// failure, 6 = busy, 0x0B = gateway target failed, …).
    Exception(u8),
    /// Reads answer fewer registers than asked (a consistent frame, half the data).
    ShortRead,
    /// Replies carry another unit id than the request (a gateway mixing up its meters).
    WrongUnitId,
    /// Replies come after [`MeterSimConfig::slow_reply`].
    Slow,
    /// Requests are read but not answered until the fault is cleared; then the late reply
    /// is sent (tokio-modbus issue #324: a client that kept the connection mismatches it).
    Hang,
    /// Half a reply frame is sent and the connection closed.
    Truncated,
}

/// How to build one simulated meter.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterSimConfig {
    /// Register map.
    pub kind: MeterKind,
    /// Unit id the meter answers to; requests for other ids get exception 0x0B, as a
    /// gateway answers for a meter it cannot reach.
    pub unit_id: u8,
    /// The load the meter measures.
    pub load: Load,
    /// Import counter at start (kWh).
    pub initial_import_kwh: f64,
    /// Simulated seconds per real second for the energy counters (3600 = an hour a second).
    pub time_scale: f64,
    /// Serial number in the identification registers.
    pub serial: u32,
    /// Faults present from the start.
    pub faults: Vec<MeterFault>,
    /// Delay of [`MeterFault::Slow`] replies.
    pub slow_reply: Duration,
}

impl MeterSimConfig {
    /// A `kind` meter at unit 1 on a 30 kW 50 Hz load, real time, no faults.
    pub fn new(kind: MeterKind) -> Self {
        MeterSimConfig {
            kind,
            unit_id: 1,
            load: Load::grid_50hz(30_000.0),
            initial_import_kwh: 12_345.67,
            time_scale: 1.0,
            serial: 22_123_456,
            faults: Vec::new(),
            slow_reply: Duration::from_secs(3),
        }
    }
}

/// Largest PDU in a Modbus TCP frame; the MBAP length field may not exceed 1 + this.
const MAX_PDU_BYTES: usize = 253;

/// State shared by the accept loop, the connections and the handle.
struct Shared {
    config: MeterSimConfig,
    physics: Mutex<Physics>,
    faults: Mutex<Vec<MeterFault>>,
    connections: AtomicU64,
    requests: AtomicU64,
}

impl Shared {
    fn physics(&self) -> MutexGuard<'_, Physics> {
        // A poisoned lock only means a panicking task held it; the physics stay usable.
        self.physics.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has(&self, fault: MeterFault) -> bool {
        self.faults().contains(&fault)
    }

    fn faults(&self) -> Vec<MeterFault> {
        self.faults
            .lock()
            .map(|f| f.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn reading_now(&self) -> MeterSnapshot {
        let mut phys = self.physics();
        phys.advance(Instant::now());
        phys.reading(now_unix_ms())
    }

    fn image(&self) -> Image {
        let reading = self.reading_now();
        let mut img = Image::default();
        match &self.config.kind {
            MeterKind::AbbB2x => registers::abb_b2x(&reading, self.config.serial, &mut img),
            MeterKind::SchneiderPm5xxx => {
                registers::schneider_pm5xxx(&reading, self.config.serial, &mut img)
            }
            MeterKind::SatecPm180 { scales, delta } => {
                registers::satec_pm180(&reading, scales, *delta, &mut img)
            }
        }
        img
    }
}

fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A simulated meter listening on TCP; dropping it closes the listener and every connection.
pub struct RunningMeter {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: AbortHandle,
}

impl std::fmt::Debug for RunningMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningMeter")
            .field("addr", &self.addr)
            .field("kind", &self.shared.config.kind)
            .finish()
    }
}

impl Drop for RunningMeter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RunningMeter {
    /// The address the meter listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What an ideal meter reads right now (unquantised): the ground truth to compare with.
    pub fn truth(&self) -> MeterSnapshot {
        self.shared.reading_now()
    }

    /// Changes the load's active-power set-point (W); the power follows with the load's lag.
    pub fn set_load_w(&self, power_w: f64) {
        let mut phys = self.shared.physics();
        phys.advance(Instant::now());
        phys.load.power_w = power_w;
    }

    /// Replaces the active faults; connections see the change at their next request.
    pub fn set_faults(&self, faults: Vec<MeterFault>) {
        if let Ok(mut f) = self.shared.faults.lock() {
            *f = faults;
        }
    }

    /// TCP connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Requests received so far.
    pub fn requests_received(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }
}

/// Starts a simulated meter listening on `addr` (use port 0 for any free port).
pub async fn spawn_meter(
    config: MeterSimConfig,
    addr: SocketAddr,
) -> std::io::Result<RunningMeter> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        physics: Mutex::new(Physics::new(
            config.load,
            config.initial_import_kwh,
            config.time_scale,
            Instant::now(),
        )),
        faults: Mutex::new(config.faults.clone()),
        connections: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        config,
    });
    let accept_shared = shared.clone();
    let task = tokio::spawn(async move {
        // Connections live in this set: aborting the accept task drops and aborts them all.
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    accept_shared.connections.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve(stream, accept_shared.clone()));
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    });
    Ok(RunningMeter {
        addr,
        shared,
        task: task.abort_handle(),
    })
}

/// One Modbus TCP request as read off the wire.
struct Request {
    transaction_id: u16,
    unit_id: u8,
    pdu: Vec<u8>,
}

/// Reads one MBAP-framed request; `None` on EOF or a frame no meter would accept.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut header = [0u8; 7];
    stream.read_exact(&mut header).await.ok()?;
    let transaction_id = u16::from_be_bytes([header[0], header[1]]);
    let protocol_id = u16::from_be_bytes([header[2], header[3]]);
    let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
    if protocol_id != 0 || !(2..=MAX_PDU_BYTES + 1).contains(&length) {
        return None;
    }
    let mut pdu = vec![0u8; length - 1];
    stream.read_exact(&mut pdu).await.ok()?;
    Some(Request {
        transaction_id,
        unit_id: header[6],
        pdu,
    })
}

/// An exception reply PDU.
fn exception(function: u8, code: u8) -> Vec<u8> {
    vec![function | 0x80, code]
}

/// The reply PDU to a request, given the meter's register image and faults.
fn answer(shared: &Shared, req: &Request) -> Vec<u8> {
    let Some(&function) = req.pdu.first() else {
        return exception(0, 0x01);
    };
    if req.unit_id != shared.config.unit_id {
        return exception(function, 0x0B);
    }
    if function != 0x03 && function != 0x04 {
        return exception(function, 0x01);
    }
    let [_, a_hi, a_lo, c_hi, c_lo] = req.pdu[..] else {
        return exception(function, 0x03);
    };
    let start = u16::from_be_bytes([a_hi, a_lo]);
    let count = u16::from_be_bytes([c_hi, c_lo]);
    if !(1..=125).contains(&count) {
        return exception(function, 0x03);
    }
    for fault in shared.faults() {
        if let MeterFault::Exception(code) = fault {
            return exception(function, code);
        }
    }
    let image = shared.image();
    let mut words = Vec::with_capacity(usize::from(count));
    for offset in 0..count {
        match start.checked_add(offset).and_then(|a| image.get(a)) {
            Some(w) => words.push(w),
            None => return exception(function, 0x02),
        }
    }
    if shared.has(MeterFault::ShortRead) {
        words.truncate(words.len() / 2);
    }
    let mut pdu = Vec::with_capacity(2 + words.len() * 2);
    pdu.push(function);
    pdu.push((words.len() * 2) as u8);
    for w in words {
        pdu.extend_from_slice(&w.to_be_bytes());
    }
    pdu
}

/// Serves one connection: requests in order, one reply each, until EOF or a fault closes it.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    while let Some(req) = read_request(&mut stream).await {
        shared.requests.fetch_add(1, Ordering::Relaxed);
        if shared.has(MeterFault::Hang) {
            while shared.has(MeterFault::Hang) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if shared.has(MeterFault::Slow) {
            tokio::time::sleep(shared.config.slow_reply).await;
        }
        let pdu = answer(&shared, &req);
        let unit_id = if shared.has(MeterFault::WrongUnitId) {
            req.unit_id.wrapping_add(1)
        } else {
            req.unit_id
        };
        let mut frame = Vec::with_capacity(7 + pdu.len());
        frame.extend_from_slice(&req.transaction_id.to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
        frame.push(unit_id);
        frame.extend_from_slice(&pdu);
        if shared.has(MeterFault::Truncated) {
            let half = frame.len() / 2;
            let _ = stream.write_all(&frame[..half]).await;
            return;
        }
        if stream.write_all(&frame).await.is_err() {
            return;
        }
    }
}
