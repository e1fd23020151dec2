//! Modbus TCP transport on `tokio-modbus`: connect with a deadline, read holding registers
//! (FC 03), and turn every way a read can fail into a [`DriverError`] that says whether the
//! connection is still usable.
//!
//! After a timeout or a framing error the connection must be dropped: the late reply would
//! otherwise be taken as the answer to the next request (tokio-modbus issue #324).

use crate::error::DriverError;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_modbus::client::{Client, Context};
use tokio_modbus::{ExceptionCode, Request, Response, Slave};

/// Opens a Modbus TCP connection to `addr` addressing `unit_id`, within `deadline`.
pub async fn connect(
    addr: SocketAddr,
    unit_id: u8,
    deadline: Duration,
) -> Result<Context, DriverError> {
    let stream = tokio::time::timeout(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| DriverError::Timeout(deadline, "modbus connect"))?
        .map_err(DriverError::Connect)?;
    // Requests are small and each waits for its reply; Nagle would only add latency.
    stream.set_nodelay(true).map_err(DriverError::Io)?;
    Ok(tokio_modbus::client::tcp::attach_slave(
        stream,
        Slave(unit_id),
    ))
}

/// The Modbus name of an exception code, for operators.
pub fn exception_name(code: ExceptionCode) -> &'static str {
    match code {
        ExceptionCode::IllegalFunction => "illegal function",
        ExceptionCode::IllegalDataAddress => "illegal data address",
        ExceptionCode::IllegalDataValue => "illegal data value",
        ExceptionCode::ServerDeviceFailure => "server device failure",
        ExceptionCode::Acknowledge => "acknowledge",
        ExceptionCode::ServerDeviceBusy => "server device busy",
        ExceptionCode::MemoryParityError => "memory parity error",
        ExceptionCode::GatewayPathUnavailable => "gateway path unavailable",
        ExceptionCode::GatewayTargetDevice => "gateway target device failed to respond",
        ExceptionCode::Custom(_) => "unknown exception",
    }
}

/// Why a read failed, and whether the connection may be reused.
#[derive(Debug)]
pub struct ReadError {
    /// The error to report.
    pub error: DriverError,
    /// The byte stream may be out of step with our requests: reconnect before the next one.
    pub drop_connection: bool,
}

impl ReadError {
    fn fatal(error: DriverError) -> Self {
        ReadError {
            error,
            drop_connection: true,
        }
    }
}

/// Reads `count` holding registers from wire address `start`, finishing before `deadline`.
pub async fn read_holding(
    ctx: &mut Context,
    start: u16,
    count: u16,
    deadline: Instant,
    budget: Duration,
) -> Result<Vec<u16>, ReadError> {
    // `Client::call` rather than `Reader::read_holding_registers`: the latter has a
    // `debug_assert` on the register count, so a meter's short read would panic debug builds.
    let request = Request::ReadHoldingRegisters(start, count);
    let reply = tokio::time::timeout_at(deadline, ctx.call(request))
        .await
        .map_err(|_| ReadError::fatal(DriverError::Timeout(budget, "modbus read")))?;
    let reply = reply.map(|r| {
        r.map(|response| match response {
            Response::ReadHoldingRegisters(registers) => Some(registers),
            _ => None,
        })
    });
    match reply {
        Ok(Ok(None)) => Err(ReadError::fatal(DriverError::Malformed(format!(
            "reply to reading {count} registers at {start} is not a register read"
        )))),
        Ok(Ok(Some(registers))) if registers.len() == usize::from(count) => Ok(registers),
        // The stream is still in step (the frame was complete), so the connection stays.
        Ok(Ok(Some(registers))) => Err(ReadError {
            error: DriverError::Malformed(format!(
                "short read: asked {count} registers at {start}, got {}",
                registers.len()
            )),
            drop_connection: false,
        }),
        Ok(Err(code)) => Err(ReadError {
            error: DriverError::Rejected(format!(
                "modbus exception {} (0x{:02X}) reading {count} registers at {start}",
                exception_name(code),
                u8::from(code)
            )),
            drop_connection: false,
        }),
        Err(tokio_modbus::Error::Protocol(e)) => Err(ReadError::fatal(DriverError::Malformed(
            format!("reply does not match the request (another unit id or a late reply): {e}"),
        ))),
        Err(tokio_modbus::Error::Transport(e)) => {
            let error = match e.kind() {
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
                    DriverError::Malformed(format!("bad modbus frame: {e}"))
                }
                _ => DriverError::Io(e),
            };
            Err(ReadError::fatal(error))
        }
    }
}
