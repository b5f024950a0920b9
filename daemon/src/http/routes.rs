//! Requests to responses.
//!
//! | method      | path                                  |                                        |
//! |-------------|---------------------------------------|----------------------------------------|
//! | GET         | `/metrics`                            | Prometheus text format                 |
//! | GET         | `/health`                             | liveness: the process serves           |
//! | GET         | `/ready`                              | readiness, naming each failed check    |
//! | GET         | `/api/v1/sources`                     | every source                           |
//! | GET         | `/api/v1/kafka`                       | the Kafka client's queue and brokers   |
//! | GET         | `/api/v1/sources/{name}`              | one source, with committed offsets     |
//! | POST        | `/api/v1/sources/{name}/pause`        | drain, commit, stop polling            |
//! | POST        | `/api/v1/sources/{name}/resume`       | poll again                             |
//! | POST        | `/api/v1/sources/{name}/restart`      | drain, commit, start again             |
//! | GET, DELETE | `/api/v1/sources/{name}/offsets`      | committed offsets; reset them          |
//!
//! Every body is JSON except `/metrics`. State-changing calls (POST,
//! DELETE) need `Authorization: Bearer <[http] token>` when a token is
//! configured, and come only from loopback addresses when none is.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{HttpState, MAX_BODY_BYTES};
use crate::offsets::Checkpoints;
use crate::pipeline::{ControlError, KafkaCheck};

type Reply = Response<Full<Bytes>>;

/// Answers one request.
pub(super) async fn handle(
    state: &HttpState,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Reply {
    // No endpoint reads a body; one announced beyond the limit is refused
    // before anything else, and any other is never read (hyper closes the
    // connection rather than drain it).
    if request.body().size_hint().lower() > MAX_BODY_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
        );
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let changes_state = method == Method::POST || method == Method::DELETE;
    if changes_state
        && let Err(refusal) = authorize(state.token.as_deref(), peer, request.headers())
    {
        tracing::warn!(%peer, %method, path, "HTTP request refused: not authorised.");
        return refusal.reply();
    }
    let supervisor = &state.supervisor;
    match (segments.as_slice(), &method) {
        (["metrics"], &Method::GET) => metrics(),
        (["health"], &Method::GET) => reply(StatusCode::OK, &json!({"status": "ok"})),
        (["ready"], &Method::GET) => ready(state),
        (["api", "v1", "sources"], &Method::GET) => {
            reply(StatusCode::OK, &json!({"sources": supervisor.sources()}))
        }
        (["api", "v1", "kafka"], &Method::GET) => reply(
            StatusCode::OK,
            &json!(crate::metrics::global().kafka_client()),
        ),
        (["api", "v1", "cluster"], &Method::GET) => match &state.cluster {
            Some(cluster) => reply(StatusCode::OK, &json!(cluster.view().await)),
            None => error(
                StatusCode::NOT_FOUND,
                "this daemon runs alone: the main file has no [cluster] section",
            ),
        },
        (["api", "v1", "sources", name], &Method::GET) => match supervisor.source(name) {
            None => control_error(&ControlError::NotFound((*name).to_owned())),
            Some(view) => {
                let mut body = json!(view);
                match supervisor.offsets(name).await {
                    Ok(offsets) => body["offsets"] = offsets_json(&offsets),
                    Err(e) => body["offsets_error"] = json!(e.to_string()),
                }
                reply(StatusCode::OK, &body)
            }
        },
        (
            [
                "api",
                "v1",
                "sources",
                name,
                action @ ("pause" | "resume" | "restart"),
            ],
            &Method::POST,
        ) => {
            let result = match *action {
                "pause" => supervisor.pause(name),
                "resume" => supervisor.resume(name),
                _ => supervisor.restart(name),
            };
            match result {
                Ok(view) => {
                    tracing::info!(source = %name, action, %peer, "Source control request accepted.");
                    reply(
                        StatusCode::ACCEPTED,
                        &json!({"requested": action, "source": view}),
                    )
                }
                Err(e) => control_error(&e),
            }
        }
        (["api", "v1", "sources", name, "offsets"], &Method::GET) => {
            match supervisor.offsets(name).await {
                Ok(offsets) => reply(
                    StatusCode::OK,
                    &json!({"source": name, "offsets": offsets_json(&offsets)}),
                ),
                Err(e) => control_error(&e),
            }
        }
        (["api", "v1", "sources", name, "offsets"], &Method::DELETE) => {
            match supervisor.reset_offsets(name).await {
                Ok(()) => reply(StatusCode::OK, &json!({"source": name, "offsets": []})),
                Err(e) => control_error(&e),
            }
        }
        (["metrics" | "health" | "ready"] | ["api", "v1", "sources" | "cluster" | "kafka"], _)
        | (["api", "v1", "sources", _], _) => method_not_allowed("GET"),
        (["api", "v1", "sources", _, "pause" | "resume" | "restart"], _) => {
            method_not_allowed("POST")
        }
        (["api", "v1", "sources", _, "offsets"], _) => method_not_allowed("GET, DELETE"),
        _ => error(
            StatusCode::NOT_FOUND,
            "no such endpoint; see /api/v1/sources, /metrics, /health, /ready",
        ),
    }
}

/// Why a state-changing request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A token is configured and the request did not present it.
    Unauthorized,
    /// No token is configured and the request is not from loopback.
    Forbidden,
}

impl Refusal {
    fn reply(self) -> Reply {
        match self {
            Refusal::Unauthorized => {
                let mut refusal = error(
                    StatusCode::UNAUTHORIZED,
                    "this call changes state and needs `Authorization: Bearer <token>` ([http] token)",
                );
                refusal
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                refusal
            }
            Refusal::Forbidden => error(
                StatusCode::FORBIDDEN,
                "this call changes state; without an [http] token it is accepted only from loopback addresses",
            ),
        }
    }
}

/// Whether a state-changing request may proceed: with a configured token,
/// it must carry `Authorization: Bearer <token>`; without one, it must come
/// from a loopback address.
fn authorize(token: Option<&str>, peer: SocketAddr, headers: &HeaderMap) -> Result<(), Refusal> {
    match token {
        Some(token) => {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            if presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
                Ok(())
            } else {
                Err(Refusal::Unauthorized)
            }
        }
        None if peer.ip().to_canonical().is_loopback() => Ok(()),
        None => Err(Refusal::Forbidden),
    }
}

/// Compares without stopping at the first difference, so response times do
/// not reveal how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn metrics() -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(crate::metrics::global().render())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn ready(state: &HttpState) -> Reply {
    let readiness = state.supervisor.readiness();
    let kafka = match &readiness.kafka {
        KafkaCheck::Reachable { brokers } => json!({"ok": true, "brokers": brokers}),
        KafkaCheck::Pending => json!({"ok": false, "error": "no broker probe has finished yet"}),
        KafkaCheck::Unreachable { error } => json!({"ok": false, "error": error}),
    };
    let failing: Vec<Value> = readiness
        .failing_sources
        .iter()
        .map(|(name, state, reason)| json!({"source": name, "state": state, "reason": reason}))
        .collect();
    let ready = readiness.is_ready();
    let body = json!({
        "ready": ready,
        "checks": {
            "config_loaded": {"ok": readiness.config_loaded},
            "kafka_reachable": kafka,
            "sources_running": {"ok": failing.is_empty(), "failing": failing},
        },
        "last_reload_error": readiness.last_reload_error,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    reply(status, &body)
}

/// Checkpoints are opaque bytes; they are shown as text when they are
/// UTF-8 and always as hex.
fn offsets_json(offsets: &Checkpoints) -> Value {
    let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
    use crate::offsets::hex;
    offsets
        .iter()
        .map(|(partition, checkpoint)| {
            json!({
                "partition": text(partition),
                "partition_hex": hex(partition),
                "checkpoint": text(checkpoint),
                "checkpoint_hex": hex(checkpoint),
            })
        })
        .collect()
}

fn control_error(e: &ControlError) -> Reply {
    let status = match e {
        ControlError::NotFound(_) => StatusCode::NOT_FOUND,
        ControlError::Conflict { .. } => StatusCode::CONFLICT,
        ControlError::Offsets(_) | ControlError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, &e.to_string())
}

fn method_not_allowed(allow: &'static str) -> Reply {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, &format!("allowed: {allow}"));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn error(status: StatusCode, message: &str) -> Reply {
    reply(
        status,
        &json!({"error": message, "status": status.as_u16()}),
    )
}

fn reply(status: StatusCode, body: &Value) -> Reply {
    let mut text = body.to_string();
    text.push('\n');
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn without_a_token_only_loopback_peers_may_change_state() {
        let loopback: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        for peer in [loopback, mapped, v6] {
            assert!(authorize(None, peer, &headers(None)).is_ok(), "{peer}");
        }
        let refused = authorize(None, remote, &headers(None)).unwrap_err();
        assert_eq!(refused, Refusal::Forbidden);
        assert_eq!(refused.reply().status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn with_a_token_every_peer_needs_the_bearer_token() {
        let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert!(authorize(Some("s3cret"), remote, &headers(Some("Bearer s3cret"))).is_ok());
        for (peer, auth) in [
            (loopback, None),
            (loopback, Some("Bearer wrong")),
            (remote, Some("s3cret")),
            (remote, Some("Basic s3cret")),
            (remote, Some("Bearer s3cre")),
        ] {
            let refused = authorize(Some("s3cret"), peer, &headers(auth)).unwrap_err();
            assert_eq!(refused, Refusal::Unauthorized, "{peer} {auth:?}");
            assert_eq!(refused.reply().status(), StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn offsets_show_text_and_hex() {
        let mut offsets = Checkpoints::new();
        offsets.insert(b"p0".to_vec(), vec![0xff, 0x01]);
        let json = offsets_json(&offsets);
        assert_eq!(json[0]["partition"], "p0");
        assert_eq!(json[0]["partition_hex"], "7030");
        assert_eq!(json[0]["checkpoint"], Value::Null);
        assert_eq!(json[0]["checkpoint_hex"], "ff01");
    }
}
