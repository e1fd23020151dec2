//! Bitaxe and its derivatives (NerdAxe, NerdQAxe …) running ESP-Miner / AxeOS, over its plain
//! HTTP JSON API on port 80 (PROTOCOLS.md §6). No authentication; one keep-alive `GET
//! /api/system/info` per poll; writes are `POST /api/system/{restart,pause,resume,identify}` and
//! `PATCH /api/system` for pools (applied by a restart).
//!
//! Identification for the lead's `identify.rs`: [`probe`] does `GET /api/system/info` on the
//! web port and accepts a JSON object with an `ASICModel` (body text `AxeOS` or `Nerd` marks it).

pub mod control;
pub mod parse;

use crate::driver::{Ack, Capabilities, Driver};
use crate::error::DriverError;
use crate::http::{HttpClient, Request};
use crate::target::Target;
use crate::verify::{self, Verdict};
use async_trait::async_trait;
use hashmesh_core::{Command, DeviceIdentity, MinerSnapshot};

/// The info endpoint polled for telemetry and identity.
pub const INFO_PATH: &str = "/api/system/info";

/// Driver for AxeOS devices (name `bitaxe`).
#[derive(Debug, Default)]
pub struct BitaxeDriver {
    http: HttpClient,
}

impl BitaxeDriver {
    /// A driver with no open connections yet.
    pub fn new() -> Self {
        BitaxeDriver::default()
    }

    async fn info(&self, target: &Target) -> Result<Vec<u8>, DriverError> {
        let resp = self
            .http
            .send_ok(
                target.web_addr(),
                Request::get(INFO_PATH),
                None,
                &target.timeouts,
            )
            .await?;
        Ok(resp.body)
    }

    async fn post(
        &self,
        target: &Target,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Ack, DriverError> {
        let req = match body {
            Some(b) => Request::json("PATCH", path, b),
            None => Request {
                method: "POST",
                path,
                body: None,
            },
        };
        let resp = self
            .http
            .send_ok(target.web_addr(), req, None, &target.timeouts)
            .await?;
        let text = String::from_utf8_lossy(&resp.body).trim().to_owned();
        Ok(Ack {
            message: if text.is_empty() {
                format!("HTTP {}", resp.status)
            } else {
                text
            },
            silent: false,
        })
    }
}

/// Whether the device at `target`'s web port runs AxeOS: `GET /api/system/info` answers a
/// JSON object naming an `ASICModel`. Returns its identity.
pub async fn probe(target: &Target) -> Result<DeviceIdentity, DriverError> {
    BitaxeDriver::new().identify(target).await
}

#[async_trait]
impl Driver for BitaxeDriver {
    fn name(&self) -> &'static str {
        "bitaxe"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reboot: true,
            set_pools: true,
            sleep_wake: true,
            // `identify` blinks the screen/LED for a while; it cannot be read back.
            locate_led: true,
            ..Capabilities::default()
        }
    }

    async fn identify(&self, target: &Target) -> Result<DeviceIdentity, DriverError> {
        parse::bitaxe_identity(&self.info(target).await?)
    }

    async fn poll(&self, target: &Target) -> Result<MinerSnapshot, DriverError> {
        let body = self.info(target).await?;
        parse::bitaxe_snapshot(&body, crate::now_unix_ms())
    }

    async fn send(&self, target: &Target, command: &Command) -> Result<Ack, DriverError> {
        match command {
            Command::Reboot => self.post(target, "/api/system/restart", None).await,
            Command::Sleep => self.post(target, "/api/system/pause", None).await,
            Command::Wake => self.post(target, "/api/system/resume", None).await,
            Command::LocateLed { on: true } => {
                self.post(target, "/api/system/identify", None).await
            }
            Command::LocateLed { on: false } => Ok(Ack {
                message: "AxeOS identify stops by itself; nothing to switch off".into(),
                silent: true,
            }),
            Command::SetPools { pools } => {
                let body = control::pools_patch(pools)?;
                let patched = self.post(target, "/api/system", Some(&body)).await?;
                let restarted = self.post(target, "/api/system/restart", None).await?;
                Ok(Ack {
                    message: format!("{}; {}", patched.message, restarted.message),
                    silent: false,
                })
            }
            other => Err(DriverError::Unsupported(format!(
                "AxeOS has no {} over its API",
                other.name()
            ))),
        }
    }

    fn check(
        &self,
        command: &Command,
        before: Option<&MinerSnapshot>,
        after: &MinerSnapshot,
    ) -> Verdict {
        match command {
            Command::SetPools { pools } => {
                let want: Vec<(String, &str)> = pools
                    .iter()
                    .map(|p| (control::normalise_url(&p.url), p.user.as_str()))
                    .collect();
                let have: Vec<(String, &str)> = after
                    .pools
                    .iter()
                    .map(|p| (p.url.to_string(), p.user.as_str()))
                    .collect();
                if have.len() >= want.len() && have[..want.len()] == want[..] {
                    Verdict::Confirmed(format!("pools now {:?}", have))
                } else {
                    Verdict::Pending(format!("pools still {:?}", have))
                }
            }
            Command::LocateLed { .. } => {
                Verdict::CannotTell("AxeOS does not report its identify state".into())
            }
            _ => verify::check(command, before, after),
        }
    }
}
