//! Live updates over WebSocket: one task computes, once per poll interval, the fleet summary and
//! the devices whose status changed, and every connected dashboard receives the same frames.

use super::AppState;
use super::devices::Row;
use crate::auth::RequireViewer;
use crate::live::DeviceStatus;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Frames kept for a slow client before it skips ahead.
const BACKLOG: usize = 16;

/// The fan-out channel of live frames.
pub struct Feed {
    tx: broadcast::Sender<Arc<str>>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Feed {
    /// Computes and sends frames forever (spawn it once per server).
    pub async fn run(self: Arc<Self>, state: AppState) {
        let every = Duration::from_secs_f64(state.node.config.poll.interval_s.clamp(1.0, 10.0));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: HashMap<String, DeviceStatus> = HashMap::new();
        loop {
            tick.tick().await;
            if self.tx.receiver_count() == 0 {
                // Nobody listens: keep the baseline fresh so the first frame is not a flood.
                last.clear();
                continue;
            }
            let st = state.clone();
            let prev = std::mem::take(&mut last);
            let out = tokio::task::spawn_blocking(move || frames(&st, prev)).await;
            let Ok((frames, seen)) = out else { continue };
            last = seen;
            for f in frames {
                let _ = self.tx.send(f);
            }
        }
    }
}

fn frames(
    state: &AppState,
    prev: HashMap<String, DeviceStatus>,
) -> (Vec<Arc<str>>, HashMap<String, DeviceStatus>) {
    let summary = super::fleet::compute(&state.node, false);
    let mut out = vec![Arc::from(
        serde_json::json!({"type": "summary", "data": summary}).to_string(),
    )];
    let rows = state.rows.get(&state.node.live);
    let mut seen = HashMap::with_capacity(rows.len());
    let mut changed: Vec<&Row> = Vec::new();
    for r in rows.iter() {
        let id = &r.info().id.0;
        if !prev.is_empty() && prev.get(id) != Some(&r.status()) {
            changed.push(r);
        }
        seen.insert(id.clone(), r.status());
    }
    // Large swings (a whole container tripping) are sent in pieces a browser can swallow.
    for chunk in changed.chunks(1000) {
        let data: Vec<_> = chunk.iter().map(|r| r.to_json()).collect();
        out.push(Arc::from(
            serde_json::json!({"type": "devices", "data": data}).to_string(),
        ));
    }
    (out, seen)
}

/// `GET /api/v1/ws`.
#[utoipa::path(get, path = "/api/v1/ws", tag = "fleet",
    description = "WebSocket. The server sends `{\"type\":\"summary\",\"data\":…}` (the fleet summary without groups) once per poll interval and `{\"type\":\"devices\",\"data\":[rows]}` with the devices whose status changed.",
    responses((status = 101, description = "Switching to the WebSocket protocol")))]
pub async fn upgrade(
    _who: RequireViewer,
    State(s): State<AppState>,
    ws: WebSocketUpgrade,
) -> Response {
    let rx = s.feed.tx.subscribe();
    let first = {
        let node = s.node.clone();
        tokio::task::spawn_blocking(move || {
            Arc::<str>::from(
                serde_json::json!({"type": "summary", "data": super::fleet::compute(&node, false)})
                    .to_string(),
            )
        })
        .await
        .ok()
    };
    ws.on_upgrade(move |socket| serve(socket, rx, first))
}

async fn serve(
    mut socket: WebSocket,
    mut rx: broadcast::Receiver<Arc<str>>,
    first: Option<Arc<str>>,
) {
    if let Some(f) = first
        && socket.send(Message::Text(f.as_ref().into())).await.is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Ok(text) => {
                    if socket.send(Message::Text(text.as_ref().into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
