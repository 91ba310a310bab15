//! `sessionvisor invoke`, `sessions` and `stop`: a small client of a running
//! `sessionvisor serve`, over the same routes curl and boto3 use.
//!
//! Results go to stdout (a stream one chunk per line, as it arrives); what
//! went wrong goes to stderr, and the exit status is 1.

mod sse;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Client, Response, StatusCode, Url};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::front::http::SESSION_HEADER;

/// Connecting is quick on loopback; the answer may take as long as the event.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `sessionvisor invoke`: sends one event and prints its result or stream.
pub async fn invoke(url: &str, session: Option<String>, payload: &str) -> ExitCode {
    report(invoke_inner(url, session, payload).await)
}

/// `sessionvisor sessions`: prints the live sessions as a table or as JSON.
pub async fn sessions(url: &str, json: bool) -> ExitCode {
    report(sessions_inner(url, json).await)
}

/// `sessionvisor stop`: stops one session at once.
pub async fn stop(url: &str, session: &str) -> ExitCode {
    report(stop_inner(url, session).await)
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sessionvisor: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn client(url: &Url) -> anyhow::Result<Client> {
    let mut builder = Client::builder().connect_timeout(CONNECT_TIMEOUT);
    // A proxy from the environment has no business relaying loopback traffic.
    if is_loopback(url) {
        builder = builder.no_proxy();
    }
    builder.build().context("building the HTTP client")
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// `base` with `segments` appended as path segments (each percent-encoded).
fn endpoint(base: &str, segments: &[&str]) -> anyhow::Result<Url> {
    let mut url = Url::parse(base).with_context(|| format!("--url {base:?} is not a URL"))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("--url {base:?} cannot have a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

async fn send(request: reqwest::RequestBuilder, url: &Url) -> anyhow::Result<Response> {
    request.send().await.with_context(|| {
        format!("cannot reach {url}; is `sessionvisor serve` running there (see --url)?")
    })
}

async fn read_payload(payload: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = if payload == "-" {
        let mut bytes = Vec::new();
        tokio::io::stdin()
            .read_to_end(&mut bytes)
            .await
            .context("reading the event from stdin")?;
        bytes
    } else {
        payload.as_bytes().to_vec()
    };
    // Checked here too, so a typo is named before anything is sent.
    serde_json::from_slice::<Value>(&bytes).context("the event is not JSON")?;
    Ok(bytes)
}

async fn invoke_inner(url: &str, session: Option<String>, payload: &str) -> anyhow::Result<()> {
    let body = read_payload(payload).await?;
    let url = endpoint(url, &["invocations"])?;
    let mut request = client(&url)?
        .post(url.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "text/event-stream, application/json")
        .body(body);
    if let Some(session) = &session {
        request = request.header(SESSION_HEADER, session.as_str());
    }
    let response = send(request, &url).await?;
    if session.is_none() {
        if let Some(id) = response.headers().get(SESSION_HEADER) {
            eprintln!("session: {}", String::from_utf8_lossy(id.as_bytes()));
        }
    }
    if !response.status().is_success() {
        bail!("{}", failure(response).await);
    }
    let streamed = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    if streamed {
        print_stream(response).await
    } else {
        let text = response.text().await.context("reading the result")?;
        print_line(text.trim_end())
    }
}

/// Prints each chunk's data on its own line as it arrives. An `error` event
/// (the stream failed after it started) fails the command.
async fn print_stream(response: Response) -> anyhow::Result<()> {
    let mut decoder = sse::Decoder::default();
    let mut bytes = response.bytes_stream();
    while let Some(next) = bytes.next().await {
        let next = next.context("the stream was cut off")?;
        for event in decoder.push(&next) {
            if event.name.as_deref() == Some("error") {
                bail!("the stream failed: {}", describe_stream_error(&event.data));
            }
            print_line(&event.data)?;
        }
    }
    Ok(())
}

fn describe_stream_error(data: &str) -> String {
    let Ok(error) = serde_json::from_str::<Value>(data) else {
        return data.to_string();
    };
    let text = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or("");
    format!(
        "{}: {}: {}",
        text("kind"),
        text("error_type"),
        text("error")
    )
}

/// The server's error answer as one line: status, kind, handler type, message
/// (and the handler's traceback, when it sent one).
async fn failure(response: Response) -> String {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let Ok(body) = serde_json::from_str::<Value>(&text) else {
        return format!("HTTP {status}: {}", text.trim());
    };
    let error = &body["error"];
    let field = |key: &str| error.get(key).and_then(Value::as_str);
    let mut line = format!("HTTP {status}: {}", field("kind").unwrap_or("error"));
    if let Some(error_type) = field("type") {
        line.push_str(&format!(": {error_type}"));
    }
    line.push_str(&format!(": {}", field("message").unwrap_or(text.trim())));
    match error.get("traceback") {
        Some(Value::String(traceback)) => line.push_str(&format!("\n{}", traceback.trim_end())),
        Some(Value::Array(lines)) => {
            for traceback_line in lines.iter().filter_map(Value::as_str) {
                line.push_str(&format!("\n{}", traceback_line.trim_end()));
            }
        }
        _ => {}
    }
    line
}

fn print_line(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}

async fn sessions_inner(url: &str, json: bool) -> anyhow::Result<()> {
    let url = endpoint(url, &["sessions"])?;
    let response = send(client(&url)?.get(url.clone()), &url).await?;
    if !response.status().is_success() {
        bail!("{}", failure(response).await);
    }
    let body: Value = response.json().await.context("reading the session list")?;
    if json {
        return print_line(&body.to_string());
    }
    let sessions = body["sessions"].as_array().cloned().unwrap_or_default();
    print_line(&table(&sessions))
}

/// The columns of `sessionvisor sessions`, and the key each is read from.
const COLUMNS: [(&str, &str); 7] = [
    ("SESSION", "session_id"),
    ("STATE", "state"),
    ("PID", "worker_pid"),
    ("INSTANCE", "instance"),
    ("EVENTS", "events"),
    ("STARTED", "started_at"),
    ("LAST ACTIVITY", "last_activity"),
];

fn table(sessions: &[Value]) -> String {
    let cell = |session: &Value, key: &str| match &session[key] {
        Value::Null => "-".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|session| COLUMNS.iter().map(|(_, key)| cell(session, key)).collect())
        .collect();
    let widths: Vec<usize> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (title, _))| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let render = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut lines = vec![render(COLUMNS.iter().map(|(title, _)| *title).collect())];
    lines.extend(
        rows.iter()
            .map(|row| render(row.iter().map(String::as_str).collect())),
    );
    lines.join("\n")
}

async fn stop_inner(url: &str, session: &str) -> anyhow::Result<()> {
    let url = endpoint(url, &["sessions", session])?;
    let response = send(client(&url)?.delete(url.clone()), &url).await?;
    match response.status() {
        status if status.is_success() => print_line(&format!("stopped {session}")),
        StatusCode::NOT_FOUND => bail!("no session {session:?} is running"),
        _ => bail!("{}", failure(response).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_append_encoded_segments_to_any_base() {
        assert_eq!(
            endpoint("http://127.0.0.1:8080", &["invocations"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/invocations"
        );
        assert_eq!(
            endpoint("http://h:1/prefix/", &["sessions", "a b/c"])
                .unwrap()
                .as_str(),
            "http://h:1/prefix/sessions/a%20b%2Fc"
        );
        assert!(endpoint("not a url", &["x"]).is_err());
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        let loopback = |url: &str| is_loopback(&Url::parse(url).unwrap());
        assert!(loopback("http://127.0.0.1:8080"));
        assert!(loopback("http://[::1]:8080"));
        assert!(loopback("http://localhost:8080"));
        assert!(!loopback("http://example.com"));
        assert!(!loopback("http://10.0.0.1"));
    }

    #[test]
    fn the_session_table_aligns_columns_and_marks_missing_values() {
        let sessions = vec![serde_json::json!({
            "session_id": "a", "state": "idle", "worker_pid": 42, "instance": 1,
            "events": 3, "started_at": "t0", "last_activity": null
        })];
        let table = table(&sessions);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("SESSION  STATE  PID  INSTANCE  EVENTS"));
        assert!(lines[1].starts_with("a        idle   42   1         3"));
        assert!(lines[1].ends_with('-'));
    }
}
