//! The meter driver against the simulated meters over real TCP on 127.0.0.1: every field of
//! every map compared with the simulator's ground truth, batching and connection reuse, the
//! faults (exceptions, short reads, another unit id, truncated frames, slow and hanging meters)
//! and reconnection after them.

use hashmesh_core::MeterSnapshot;
use hashmesh_drivers::modbus::map::{SatecConfig, SatecRanges};
use hashmesh_drivers::modbus::{MeterDriver, MeterModel, MeterTarget, probe};
use hashmesh_drivers::{DriverError, Timeouts};
use hashmesh_sim::meter::registers::SatecScales;
use hashmesh_sim::meter::{MeterFault, MeterKind, MeterSimConfig, RunningMeter, spawn_meter};
use std::time::{Duration, Instant};

async fn start(config: MeterSimConfig) -> RunningMeter {
    spawn_meter(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn target(meter: &RunningMeter, unit_id: u8, model: MeterModel) -> MeterTarget {
    let mut t = MeterTarget::at(meter.local_addr(), unit_id, model);
    t.timeouts = Timeouts {
        connect: Duration::from_millis(500),
        total: Duration::from_millis(600),
        max_reply_bytes: 1024,
    };
    t
}

/// Absolute tolerance of each field class for one model (half its resolution, or the float
/// precision), and which optional fields the model leaves out.
struct Tolerances {
    voltage_v: f64,
    current_a: f64,
    phase_power: f64,
    total_power: f64,
    pf: f64,
    hz: f64,
    energy_kwh: f64,
    has_ln: bool,
    has_ll: bool,
    has_reactive_energy: bool,
    has_export: bool,
}

fn check_field(name: &str, got: Option<f64>, truth: Option<f64>, tol: f64, present: bool) {
    if !present {
        assert_eq!(got, None, "{name}: this map has no such register");
        return;
    }
    let (Some(got), Some(truth)) = (got, truth) else {
        panic!("{name}: got {got:?}, truth {truth:?}");
    };
    assert!(
        (got - truth).abs() <= tol + 1e-9,
        "{name}: got {got}, truth {truth} (tolerance {tol})"
    );
}

fn check_phases(name: &str, got: &[Option<f64>; 3], truth: &[Option<f64>; 3], tol: f64, on: bool) {
    for i in 0..3 {
        check_field(&format!("{name}[{i}]"), got[i], truth[i], tol, on);
    }
}

/// Compares a polled snapshot with the truth taken just before and after the poll.
fn compare(got: &MeterSnapshot, before: &MeterSnapshot, after: &MeterSnapshot, t: &Tolerances) {
    let p = t.phase_power;
    check_field(
        "active_power_total_w",
        got.active_power_total_w,
        before.active_power_total_w,
        t.total_power,
        true,
    );
    check_phases(
        "active_power_phase_w",
        &got.active_power_phase_w,
        &before.active_power_phase_w,
        p,
        true,
    );
    check_field(
        "reactive_power_total_var",
        got.reactive_power_total_var,
        before.reactive_power_total_var,
        t.total_power,
        true,
    );
    check_phases(
        "reactive_power_phase_var",
        &got.reactive_power_phase_var,
        &before.reactive_power_phase_var,
        p,
        true,
    );
    check_field(
        "apparent_power_total_va",
        got.apparent_power_total_va,
        before.apparent_power_total_va,
        t.total_power,
        true,
    );
    check_phases(
        "apparent_power_phase_va",
        &got.apparent_power_phase_va,
        &before.apparent_power_phase_va,
        p,
        true,
    );
    check_phases(
        "voltage_ln_v",
        &got.voltage_ln_v,
        &before.voltage_ln_v,
        t.voltage_v,
        t.has_ln,
    );
    check_phases(
        "voltage_ll_v",
        &got.voltage_ll_v,
        &before.voltage_ll_v,
        t.voltage_v,
        t.has_ll,
    );
    check_phases(
        "current_phase_a",
        &got.current_phase_a,
        &before.current_phase_a,
        t.current_a,
        true,
    );
    check_field(
        "current_neutral_a",
        got.current_neutral_a,
        before.current_neutral_a,
        t.current_a,
        true,
    );
    check_field(
        "power_factor_total",
        got.power_factor_total,
        before.power_factor_total,
        t.pf,
        true,
    );
    check_phases(
        "power_factor_phase",
        &got.power_factor_phase,
        &before.power_factor_phase,
        t.pf,
        true,
    );
    check_field(
        "frequency_hz",
        got.frequency_hz,
        before.frequency_hz,
        t.hz,
        true,
    );
    // Counters move while we poll: the reading must lie between the truth before and after.
    let within = |name: &str, got: Option<f64>, lo: Option<f64>, hi: Option<f64>, on: bool| {
        if !on {
            assert_eq!(got, None, "{name}: this map has no such register");
            return;
        }
        let (Some(got), Some(lo), Some(hi)) = (got, lo, hi) else {
            panic!("{name}: got {got:?}, truth {lo:?}..{hi:?}");
        };
        assert!(
            got >= lo - t.energy_kwh - 1e-9 && got <= hi + t.energy_kwh + 1e-9,
            "{name}: got {got}, truth {lo}..{hi}"
        );
    };
    within(
        "energy_import_kwh",
        got.energy_import_kwh,
        before.energy_import_kwh,
        after.energy_import_kwh,
        true,
    );
    within(
        "energy_export_kwh",
        got.energy_export_kwh,
        before.energy_export_kwh,
        after.energy_export_kwh,
        t.has_export,
    );
    within(
        "reactive_energy_import_kvarh",
        got.reactive_energy_import_kvarh,
        before.reactive_energy_import_kvarh,
        after.reactive_energy_import_kvarh,
        t.has_reactive_energy,
    );
}

async fn poll_and_compare(kind: MeterKind, model: MeterModel, tol: &Tolerances) {
    let mut config = MeterSimConfig::new(kind);
    config.unit_id = 3;
    // An hour of energy per real second, so the counters visibly move between polls.
    config.time_scale = 3600.0;
    let meter = start(config).await;
    let driver = MeterDriver::new();
    let target = target(&meter, 3, model);
    for _ in 0..2 {
        let before = meter.truth();
        let got = driver.poll(&target).await.unwrap();
        let after = meter.truth();
        compare(&got, &before, &after, tol);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn abb_b2x_every_field_matches_the_truth() {
    let tol = Tolerances {
        voltage_v: 0.05,
        current_a: 0.005,
        phase_power: 0.005,
        total_power: 0.005,
        pf: 0.0005,
        hz: 0.005,
        energy_kwh: 0.005,
        has_ln: true,
        has_ll: true,
        has_reactive_energy: false,
        has_export: true,
    };
    poll_and_compare(MeterKind::AbbB2x, MeterModel::AbbB2x, &tol).await;
}

#[tokio::test]
async fn schneider_pm5xxx_every_field_matches_the_truth() {
    // FLOAT32: about 7 significant digits of the value in kW / V / A.
    let tol = Tolerances {
        voltage_v: 1e-4,
        current_a: 1e-5,
        phase_power: 0.01,
        total_power: 0.01,
        pf: 1e-6,
        hz: 1e-5,
        energy_kwh: 0.0005,
        has_ln: true,
        has_ll: true,
        has_reactive_energy: true,
        has_export: true,
    };
    poll_and_compare(
        MeterKind::SchneiderPm5xxx,
        MeterModel::SchneiderPm5xxx,
        &tol,
    )
    .await;
}

fn satec_tolerances(ln: bool) -> Tolerances {
    let half_step = |lo: f64, hi: f64| (hi - lo) / 9999.0 / 2.0;
    Tolerances {
        voltage_v: half_step(0.0, 500.0),
        current_a: half_step(0.0, 200.0),
        phase_power: half_step(-100_000.0, 100_000.0),
        total_power: half_step(-300_000.0, 300_000.0),
        pf: half_step(-1.0, 1.0),
        hz: half_step(0.0, 100.0),
        // Whole kWh counters, truncated.
        energy_kwh: 1.0,
        has_ln: ln,
        has_ll: !ln,
        has_reactive_energy: true,
        has_export: true,
    }
}

#[tokio::test]
async fn satec_pm180_every_field_matches_the_truth_with_configured_ranges() {
    let kind = MeterKind::SatecPm180 {
        scales: SatecScales::default(),
        delta: false,
    };
    let model = MeterModel::SatecPm180(SatecConfig::default());
    poll_and_compare(kind, model, &satec_tolerances(true)).await;
}

#[tokio::test]
async fn satec_pm180_delta_wiring_and_other_ranges() {
    let scales = SatecScales {
        volts: (0.0, 600.0),
        amps: (0.0, 100.0),
        phase_kw: (-50.0, 50.0),
        total_kw: (-150.0, 150.0),
        pf: (-1.0, 1.0),
        hz: (40.0, 70.0),
    };
    let ranges = SatecRanges {
        voltage_v: scales.volts,
        current_a: scales.amps,
        phase_power_kw: scales.phase_kw,
        total_power_kw: scales.total_kw,
        power_factor: scales.pf,
        frequency_hz: scales.hz,
    };
    let mut config = MeterSimConfig::new(MeterKind::SatecPm180 {
        scales,
        delta: true,
    });
    config.load = hashmesh_sim::meter::load::Load::grid_60hz(20_000.0);
    let meter = start(config).await;
    let model = MeterModel::SatecPm180(SatecConfig {
        ranges,
        delta_wiring: true,
    });
    let half_step = |(lo, hi): (f64, f64), unit: f64| (hi - lo) * unit / 9999.0 / 2.0;
    let tol = Tolerances {
        voltage_v: half_step(scales.volts, 1.0),
        current_a: half_step(scales.amps, 1.0),
        phase_power: half_step(scales.phase_kw, 1000.0),
        total_power: half_step(scales.total_kw, 1000.0),
        pf: half_step(scales.pf, 1.0),
        hz: half_step(scales.hz, 1.0),
        energy_kwh: 1.0,
        has_ln: false,
        has_ll: true,
        has_reactive_energy: true,
        has_export: true,
    };
    let driver = MeterDriver::new();
    let before = meter.truth();
    let got = driver.poll(&target(&meter, 1, model)).await.unwrap();
    compare(&got, &before, &meter.truth(), &tol);
    assert!(got.frequency_hz.is_some_and(|f| (f - 60.0).abs() < 0.01));
}

#[tokio::test]
async fn energy_counters_integrate_the_load_and_power_follows_its_set_point() {
    let mut config = MeterSimConfig::new(MeterKind::AbbB2x);
    config.time_scale = 3600.0;
    let meter = start(config).await;
    let driver = MeterDriver::new();
    let target = target(&meter, 1, MeterModel::AbbB2x);
    let first = driver.poll(&target).await.unwrap();
    // 30 kW for 50 ms at 3600× is 1.5 kWh: far above the counter's 0.01 kWh resolution, so the
    // import counter's growth does not depend on how fast this task reaches the next line.
    tokio::time::sleep(Duration::from_millis(50)).await;
    meter.set_load_w(-5_000.0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = driver.poll(&target).await.unwrap();
    assert!((second.active_power_total_w.unwrap() + 5_000.0).abs() < 0.01);
    assert!(
        second.power_factor_total.unwrap() < 0.0,
        "exporting: PF signed negative"
    );
    // 30 kW until the set-point change: the import counter grew…
    assert!(second.energy_import_kwh.unwrap() > first.energy_import_kwh.unwrap());
    // …and 5 kW exported for ≥ 0.3 s at 3600× is ≥ 1.5 kWh on the export counter.
    let exported = second.energy_export_kwh.unwrap() - first.energy_export_kwh.unwrap();
    let truth = meter.truth().energy_export_kwh.unwrap();
    assert!(exported >= 1.49, "exported {exported} kWh");
    assert!(second.energy_export_kwh.unwrap() <= truth + 0.005);
}

#[tokio::test]
async fn one_connection_is_kept_and_polls_are_batched() {
    for (kind, model, requests_per_poll) in [
        (MeterKind::AbbB2x, MeterModel::AbbB2x, 2),
        (MeterKind::SchneiderPm5xxx, MeterModel::SchneiderPm5xxx, 2),
        (
            MeterKind::SatecPm180 {
                scales: SatecScales::default(),
                delta: false,
            },
            MeterModel::SatecPm180(SatecConfig::default()),
            1,
        ),
    ] {
        let meter = start(MeterSimConfig::new(kind)).await;
        let driver = MeterDriver::new();
        let target = target(&meter, 1, model);
        for _ in 0..3 {
            driver.poll(&target).await.unwrap();
        }
        assert_eq!(meter.connections_accepted(), 1, "{kind:?}");
        assert_eq!(meter.requests_received(), 3 * requests_per_poll, "{kind:?}");
    }
}

#[tokio::test]
async fn exceptions_are_rejections_named_by_their_code() {
    let meter = start(MeterSimConfig::new(MeterKind::AbbB2x)).await;
    let driver = MeterDriver::new();
    let target = target(&meter, 1, MeterModel::AbbB2x);
    for (code, name) in [
        (0x02, "illegal data address (0x02)"),
        (0x04, "server device failure (0x04)"),
        (0x06, "server device busy (0x06)"),
        (0x0B, "gateway target device failed to respond (0x0B)"),
    ] {
        meter.set_faults(vec![MeterFault::Exception(code)]);
        match driver.poll(&target).await {
            Err(DriverError::Rejected(msg)) => assert!(msg.contains(name), "{msg}"),
            other => panic!("exception {code}: {other:?}"),
        }
    }
    // An exception leaves the connection usable: the next poll reuses it.
    meter.set_faults(vec![]);
    driver.poll(&target).await.unwrap();
    assert_eq!(meter.connections_accepted(), 1);
}

#[tokio::test]
async fn a_meter_at_another_unit_id_is_a_clear_error() {
    let meter = start(MeterSimConfig::new(MeterKind::SchneiderPm5xxx)).await;
    let driver = MeterDriver::new();
    let err = driver
        .poll(&target(&meter, 9, MeterModel::SchneiderPm5xxx))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::Rejected(m) if m.contains("gateway target device")),
        "{err}"
    );
}

#[tokio::test]
async fn reply_from_another_unit_id_is_malformed_and_the_connection_replaced() {
    let meter = start(MeterSimConfig::new(MeterKind::AbbB2x)).await;
    let driver = MeterDriver::new();
    let target = target(&meter, 1, MeterModel::AbbB2x);
    meter.set_faults(vec![MeterFault::WrongUnitId]);
    let err = driver.poll(&target).await.unwrap_err();
    assert!(
        matches!(&err, DriverError::Malformed(m) if m.contains("another unit id")),
        "{err}"
    );
    meter.set_faults(vec![]);
    driver.poll(&target).await.unwrap();
    assert_eq!(meter.connections_accepted(), 2);
}

#[tokio::test]
async fn short_reads_and_truncated_frames_are_errors_not_panics() {
    let meter = start(MeterSimConfig::new(MeterKind::SchneiderPm5xxx)).await;
    let driver = MeterDriver::new();
    let target = target(&meter, 1, MeterModel::SchneiderPm5xxx);
    meter.set_faults(vec![MeterFault::ShortRead]);
    let err = driver.poll(&target).await.unwrap_err();
    assert!(
        matches!(&err, DriverError::Malformed(m) if m.contains("short read: asked 112 registers at 2999, got 56")),
        "{err}"
    );
    meter.set_faults(vec![MeterFault::Truncated]);
    let err = driver.poll(&target).await.unwrap_err();
    assert!(
        !err.is_offline(),
        "a broken frame is an error, not offline: {err}"
    );
    meter.set_faults(vec![]);
    let snap = driver.poll(&target).await.unwrap();
    assert!(snap.active_power_total_w.is_some());
}

#[tokio::test]
async fn slow_meter_times_out_within_the_deadline() {
    let mut config = MeterSimConfig::new(MeterKind::AbbB2x);
    config.faults = vec![MeterFault::Slow];
    config.slow_reply = Duration::from_secs(5);
    let meter = start(config).await;
    let driver = MeterDriver::new();
    let started = Instant::now();
    let err = driver
        .poll(&target(&meter, 1, MeterModel::AbbB2x))
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Timeout(..)), "{err}");
    assert!(err.is_offline());
    // Bounded by the 600 ms deadline, far below the 5 s the meter takes.
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn after_a_hang_the_driver_reconnects_and_ignores_the_late_reply() {
    let meter = start(MeterSimConfig::new(MeterKind::AbbB2x)).await;
    let driver = MeterDriver::new();
    let target = target(&meter, 1, MeterModel::AbbB2x);
    driver.poll(&target).await.unwrap();
    meter.set_faults(vec![MeterFault::Hang]);
    let err = driver.poll(&target).await.unwrap_err();
    assert!(matches!(err, DriverError::Timeout(..)), "{err}");
    // Clearing the hang releases the late reply on the old connection; the driver must not
    // take it for the answer to its next request.
    meter.set_faults(vec![]);
    let before = meter.truth();
    let snap = driver.poll(&target).await.unwrap();
    assert!(
        (snap.active_power_total_w.unwrap() - before.active_power_total_w.unwrap()).abs() < 0.01
    );
    assert_eq!(meter.connections_accepted(), 2);
    driver.poll(&target).await.unwrap();
    assert_eq!(meter.connections_accepted(), 2);
}

#[tokio::test]
async fn a_hanging_meter_does_not_stall_another() {
    let mut hung = MeterSimConfig::new(MeterKind::AbbB2x);
    hung.faults = vec![MeterFault::Hang];
    let hung = start(hung).await;
    let healthy = start(MeterSimConfig::new(MeterKind::SchneiderPm5xxx)).await;
    let driver = MeterDriver::new();
    let mut hung_target = target(&hung, 1, MeterModel::AbbB2x);
    hung_target.timeouts.total = Duration::from_secs(30);
    let healthy_target = target(&healthy, 1, MeterModel::SchneiderPm5xxx);
    let hung_poll = driver.poll(&hung_target);
    tokio::pin!(hung_poll);
    // The healthy meter's poll completes while the hung one is still waiting on its deadline.
    tokio::select! {
        r = driver.poll(&healthy_target) => assert!(r.is_ok(), "{r:?}"),
        r = &mut hung_poll => panic!("the hung meter answered first: {r:?}"),
    }
}

#[tokio::test]
async fn nothing_listening_is_offline() {
    let meter = start(MeterSimConfig::new(MeterKind::AbbB2x)).await;
    let addr = meter.local_addr();
    drop(meter);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let driver = MeterDriver::new();
    let mut t = MeterTarget::at(addr, 1, MeterModel::AbbB2x);
    t.timeouts.total = Duration::from_millis(500);
    let err = driver.poll(&t).await.unwrap_err();
    assert!(matches!(err, DriverError::Connect(_)), "{err}");
    assert!(err.is_offline());
}

#[tokio::test]
async fn probe_identifies_abb_and_schneider_and_leaves_satec_to_configuration() {
    let timeouts = Timeouts {
        connect: Duration::from_millis(500),
        total: Duration::from_millis(800),
        max_reply_bytes: 1024,
    };
    let mut abb = MeterSimConfig::new(MeterKind::AbbB2x);
    abb.unit_id = 5;
    abb.serial = 22_125_706;
    let abb = start(abb).await;
    let (model, id) = probe(abb.local_addr(), 5, timeouts).await.unwrap().unwrap();
    assert_eq!(model, MeterModel::AbbB2x);
    assert_eq!(id.manufacturer, "ABB");
    assert_eq!(id.serial.as_deref(), Some("22125706"));
    assert_eq!(id.firmware.as_deref(), Some("1.2.3"));

    let se = start(MeterSimConfig::new(MeterKind::SchneiderPm5xxx)).await;
    let (model, id) = probe(se.local_addr(), 1, timeouts).await.unwrap().unwrap();
    assert_eq!(model, MeterModel::SchneiderPm5xxx);
    assert_eq!(id.model, "PM5340");
    assert_eq!(id.manufacturer, "Schneider Electric");
    assert_eq!(id.serial.as_deref(), Some("22123456"));
    assert_eq!(id.firmware.as_deref(), Some("2.1.4"));

    let satec = start(MeterSimConfig::new(MeterKind::SatecPm180 {
        scales: SatecScales::default(),
        delta: false,
    }))
    .await;
    assert_eq!(probe(satec.local_addr(), 1, timeouts).await.unwrap(), None);
    let driver = MeterDriver::new();
    let id = driver
        .identify(&target(
            &satec,
            1,
            MeterModel::SatecPm180(SatecConfig::default()),
        ))
        .await
        .unwrap();
    assert_eq!(id.model, "PM180");
}

#[tokio::test]
async fn simulator_survives_garbage_and_answers_bad_requests_with_exceptions() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let meter = start(MeterSimConfig::new(MeterKind::AbbB2x)).await;
    // Not Modbus at all: the simulator drops the connection.
    let mut s = tokio::net::TcpStream::connect(meter.local_addr())
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
    // A well-framed read of 126 registers: exception 3 (illegal data value), hand-built frame.
    let mut s = tokio::net::TcpStream::connect(meter.local_addr())
        .await
        .unwrap();
    s.write_all(&[0x00, 0x07, 0, 0, 0, 6, 1, 0x03, 0x5B, 0x00, 0x00, 126])
        .await
        .unwrap();
    let mut reply = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, [0x00, 0x07, 0, 0, 0, 3, 1, 0x83, 0x03]);
    // The example read of PROTOCOLS.md §7.1, byte for byte (3,000 W on a 3 kW load).
    meter.set_load_w(3000.0);
    s.write_all(&[0x00, 0x01, 0, 0, 0, 6, 1, 0x03, 0x5B, 0x14, 0x00, 0x02])
        .await
        .unwrap();
    let mut reply = [0u8; 13];
    tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reply,
        [0x00, 0x01, 0, 0, 0, 7, 1, 0x03, 4, 0x00, 0x04, 0x93, 0xE0]
    );
    MeterDriver::new()
        .poll(&target(&meter, 1, MeterModel::AbbB2x))
        .await
        .unwrap();
}
