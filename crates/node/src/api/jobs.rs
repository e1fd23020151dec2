//! Commands from the API: each request becomes a job that sends the command to every named
//! device (a bounded number at once) and reads their state back until it shows the effect
//! (the drivers' `execute`). Results appear per device as they finish. Every command is
//! written to the audit log with who asked for it.

use super::AppState;
use super::devices::device;
use crate::auth::RequireOperator;
use crate::error::ApiError;
use crate::live::DeviceInfo;
use crate::node::NodeInner;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hashmesh_core::{Command, CommandOutcome, CommandResult};
use hashmesh_drivers::VerifyPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Devices commanded at once within one job.
pub const JOB_CONCURRENCY: usize = 32;
/// Jobs kept for reading back; older ones are forgotten.
pub const JOBS_KEPT: usize = 500;
/// Devices one job may name.
pub const MAX_DEVICES: usize = 10_000;

/// One device's outcome.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobResult {
    /// Device id.
    pub device: String,
    /// Its address.
    pub ip: String,
    /// confirmed | unverified | failed | unsupported.
    pub result: CommandResult,
    /// The device acknowledged the command.
    pub accepted: bool,
    /// What happened, in words.
    pub message: String,
    /// Time from sending to the verdict, ms.
    pub elapsed_ms: u64,
}

/// A command sent to some devices.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    /// Job number.
    pub id: u64,
    /// The command.
    pub command: Command,
    /// Who asked.
    pub requested_by: String,
    /// When, unix ms.
    pub created_unix_ms: i64,
    /// `running` or `done`.
    pub state: &'static str,
    /// Devices named.
    pub total: usize,
    /// Devices finished.
    pub done: usize,
    /// Outcomes so far.
    pub results: Vec<JobResult>,
}

/// The job table.
#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    jobs: Mutex<BTreeMap<u64, Job>>,
}

impl Jobs {
    fn create(&self, command: &Command, who: &str, total: usize) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.insert(
            id,
            Job {
                id,
                command: command.clone(),
                requested_by: who.to_owned(),
                created_unix_ms: hashmesh_drivers::now_unix_ms(),
                state: if total == 0 { "done" } else { "running" },
                total,
                done: 0,
                results: Vec::new(),
            },
        );
        while jobs.len() > JOBS_KEPT {
            jobs.pop_first();
        }
        id
    }

    fn record(&self, id: u64, r: JobResult) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(j) = jobs.get_mut(&id) {
            j.results.push(r);
            j.done += 1;
            if j.done >= j.total {
                j.state = "done";
            }
        }
    }

    /// A job by number.
    pub fn get(&self, id: u64) -> Option<Job> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// The most recent jobs, newest first, without their per-device results.
    pub fn recent(&self, n: usize) -> Vec<Job> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .rev()
            .take(n)
            .map(|j| Job {
                results: Vec::new(),
                ..j.clone()
            })
            .collect()
    }
}

/// Starts a job: returns its number at once; the devices are commanded in the background.
pub fn start(
    node: Arc<NodeInner>,
    jobs: Arc<Jobs>,
    devices: Vec<Arc<DeviceInfo>>,
    command: Command,
    who: &str,
) -> u64 {
    let id = jobs.create(&command, who, devices.len());
    tracing::info!(
        target: "audit",
        job = id,
        user = who,
        command = command.name(),
        devices = devices.len(),
        first = devices.first().map(|d| d.id.0.as_str()).unwrap_or(""),
        "command requested"
    );
    let sem = Arc::new(tokio::sync::Semaphore::new(JOB_CONCURRENCY));
    for info in devices {
        let (node, jobs, sem, command) = (node.clone(), jobs.clone(), sem.clone(), command.clone());
        tokio::spawn(async move {
            let Ok(_permit) = sem.acquire_owned().await else {
                return;
            };
            let outcome = run_one(&node, &info, &command).await;
            tracing::info!(
                target: "audit",
                job = id,
                device = %info.id,
                result = ?outcome.result,
                message = %outcome.message,
                "command finished"
            );
            jobs.record(
                id,
                JobResult {
                    device: info.id.0.clone(),
                    ip: info.ip.to_string(),
                    result: outcome.result,
                    accepted: outcome.accepted,
                    message: outcome.message,
                    elapsed_ms: outcome.elapsed_ms,
                },
            );
        });
    }
    id
}

async fn run_one(node: &NodeInner, info: &DeviceInfo, command: &Command) -> CommandOutcome {
    let unsupported = |message: String| CommandOutcome {
        command: command.clone(),
        result: CommandResult::Unsupported,
        accepted: false,
        message,
        elapsed_ms: 0,
    };
    let Some(driver) = node.registry.get(&info.family) else {
        return unsupported(format!("{} devices take no commands", info.family));
    };
    let target = node.poller.miner_target(info);
    driver
        .execute(&target, command, &VerifyPolicy::default())
        .await
}

/// A body that could not be read: 413 when too large, 415 without a JSON content type, else 400.
fn body_error(e: JsonRejection) -> ApiError {
    ApiError::new(e.status(), e.body_text())
}

/// The body of a command request: a `Command`, checked with an error naming the problem.
fn parse_command(
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Command, ApiError> {
    let Json(v) = body.map_err(body_error)?;
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("command: {e}")))
}

/// `POST /api/v1/devices/{id}/commands`.
#[utoipa::path(post, path = "/api/v1/devices/{id}/commands", tag = "commands",
    params(("id" = String, Path, description = "Device id")),
    request_body = hashmesh_core::Command,
    responses((status = 202, description = "The job that carries it out", body = Accepted),
              (status = 400, description = "Not a command; `detail` says why"),
              (status = 403, description = "Needs the operator role"), (status = 404, description = "No such device")))]
pub async fn command_one(
    who: RequireOperator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let command = parse_command(body)?;
    let d = device(&s.node, &id)?;
    let job = start(
        s.node.clone(),
        s.jobs.clone(),
        vec![d.info()],
        command,
        &who.0.username,
    );
    Ok((StatusCode::ACCEPTED, Json(Accepted { job_id: job })))
}

/// `POST /api/v1/commands` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManyBody {
    /// Device ids.
    devices: Vec<String>,
    /// The command, as for one device.
    #[schema(value_type = hashmesh_core::Command)]
    command: serde_json::Value,
}

/// The answer to a command request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Read the outcome at `/api/v1/jobs/{job_id}`.
    pub job_id: u64,
}

/// `POST /api/v1/commands`.
#[utoipa::path(post, path = "/api/v1/commands", tag = "commands", request_body = ManyBody,
    responses((status = 202, description = "The job that carries it out", body = Accepted),
              (status = 400, description = "Bad body; `detail` says why"),
              (status = 403, description = "Needs the operator role"), (status = 404, description = "A device does not exist")))]
pub async fn command_many(
    who: RequireOperator,
    State(s): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let Json(v) = body.map_err(body_error)?;
    let b: ManyBody =
        serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let command: Command = serde_json::from_value(b.command)
        .map_err(|e| ApiError::bad_request(format!("command: {e}")))?;
    if b.devices.is_empty() {
        return Err(ApiError::bad_request("devices: name at least one device"));
    }
    if b.devices.len() > MAX_DEVICES {
        return Err(ApiError::bad_request(format!(
            "devices: {} named, at most {MAX_DEVICES} per job",
            b.devices.len()
        )));
    }
    let mut infos = Vec::with_capacity(b.devices.len());
    for id in &b.devices {
        infos.push(device(&s.node, id)?.info());
    }
    let job = start(
        s.node.clone(),
        s.jobs.clone(),
        infos,
        command,
        &who.0.username,
    );
    Ok((StatusCode::ACCEPTED, Json(Accepted { job_id: job })))
}

/// `GET /api/v1/jobs/{id}`.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "commands",
    params(("id" = u64, Path, description = "Job number")),
    responses((status = 200, description = "The job and its results so far", body = Job),
              (status = 404, description = "No such job (or forgotten: the last 500 are kept)")))]
pub async fn get_job(
    _who: crate::auth::RequireViewer,
    State(s): State<AppState>,
    id: Result<Path<u64>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Job>, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::bad_request(format!("job id: {}", e.body_text())))?;
    s.jobs
        .get(id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))
}

/// `GET /api/v1/jobs`: the 100 most recent jobs.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "commands",
    responses((status = 200, description = "Recent jobs, newest first, without results", body = Vec<Job>)))]
pub async fn list_jobs(
    _who: crate::auth::RequireViewer,
    State(s): State<AppState>,
) -> Json<Vec<Job>> {
    Json(s.jobs.recent(100))
}
