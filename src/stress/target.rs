//! Where the load goes: a supervisor embedded in this process (its registry,
//! exactly as `run` and `serve` use it), or a running `sessionvisor serve`
//! over HTTP.

use crate::front::http::NEW_INSTANCE_HEADER;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::registry::Registry;

/// A result the session's worker sent back.
pub struct Answer {
    pub result: Box<RawValue>,
    /// The supervisor started a new worker for this event because the
    /// session's previous one had ended.
    pub fresh_worker: bool,
}

/// An event that got no result.
#[derive(Debug)]
pub struct Failure {
    /// The supervisor's error kind (`spawn_failed`, `too_many_sessions`, ...),
    /// or `transport_error` / `http_STATUS` when HTTP itself failed.
    pub kind: String,
    pub message: String,
}

/// The system under load.
pub enum Target {
    Embedded(Registry),
    Http(HttpTarget),
}

/// A `sessionvisor serve` reached over loopback HTTP.
pub struct HttpTarget {
    client: reqwest::Client,
    invocations: String,
}

impl HttpTarget {
    /// `timeout` bounds each request, so a wedged server cannot hang the run.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, String> {
        // The server is local: a proxy from the environment must not get in between.
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpTarget {
            client,
            invocations: format!("{}/invocations", base_url.trim_end_matches('/')),
        })
    }

    async fn send(&self, session_id: &str, event: &Value) -> Result<Answer, Failure> {
        let transport = |e: reqwest::Error| Failure {
            kind: "transport_error".into(),
            message: e.to_string(),
        };
        let response = self
            .client
            .post(&self.invocations)
            .header(crate::front::http::SESSION_HEADER, session_id)
            .json(event)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let fresh_worker = response.headers().contains_key(NEW_INSTANCE_HEADER);
        let bytes = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            let result = serde_json::from_slice::<Box<RawValue>>(&bytes).map_err(|e| Failure {
                kind: "unexpected_answer".into(),
                message: format!("the {status} body is not JSON: {e}"),
            })?;
            return Ok(Answer {
                result,
                fresh_worker,
            });
        }
        // `{"error": {"kind", "message"}}`, the agent contract's error body.
        let error: Option<Value> = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|body| body.get("error").cloned());
        let text = |key: &str| {
            error
                .as_ref()
                .and_then(|e| e.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Err(Failure {
            kind: text("kind").unwrap_or_else(|| format!("http_{}", status.as_u16())),
            message: text("message")
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect()),
        })
    }
}

impl Target {
    /// Sends one event to `session_id` and waits for its result.
    pub async fn send(&self, session_id: &str, event: Value) -> Result<Answer, Failure> {
        match self {
            Target::Http(http) => http.send(session_id, &event).await,
            Target::Embedded(registry) => {
                let outcome = registry.dispatch(session_id, event, None).await;
                match outcome {
                    Ok(Ok(delivered)) => Ok(Answer {
                        result: delivered.response.result.unwrap_or_else(null),
                        fresh_worker: delivered.replaced.is_some(),
                    }),
                    Ok(Err(error)) => Err(Failure {
                        kind: error.kind.as_str().to_string(),
                        message: error.message,
                    }),
                    Err(_) => Err(Failure {
                        kind: "shutting_down".into(),
                        message: "the session ended before replying".into(),
                    }),
                }
            }
        }
    }

    /// Sessions alive now, where this process can know it.
    pub fn live_sessions(&self) -> Option<usize> {
        match self {
            Target::Embedded(registry) => Some(registry.session_count()),
            Target::Http(_) => None,
        }
    }

    /// Stops every embedded session and deletes its files.
    pub async fn shutdown(self) -> Result<(), String> {
        match self {
            Target::Embedded(registry) => registry
                .shutdown()
                .await
                .map_err(|e| format!("cleaning up the state directory: {e}")),
            Target::Http(_) => Ok(()),
        }
    }
}

/// A handler that returned nothing.
fn null() -> Box<RawValue> {
    RawValue::from_string("null".into()).expect("\"null\" is valid JSON")
}
