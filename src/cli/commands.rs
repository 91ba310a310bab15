//! The session-running commands: `run` (stdio) and `serve` (HTTP).

use std::process::ExitCode;

use super::signals::termination_signal;
use super::{RunArgs, ServeArgs, EXIT_CANNOT_ISOLATE};

pub(super) async fn run(args: RunArgs) -> ExitCode {
    let shutdown = termination_signal();
    let registry = match args.supervisor.registry().await {
        Ok(registry) => registry,
        Err(message) => {
            eprintln!("sessionvisor: {message}");
            return ExitCode::from(EXIT_CANNOT_ISOLATE);
        }
    };
    let stdin = tokio::io::BufReader::with_capacity(64 * 1024, crate::front::stdio_pipes::input());
    let served = crate::front::stdio::serve(
        registry,
        stdin,
        crate::front::stdio_pipes::output(),
        args.supervisor.max_event_bytes,
        shutdown,
        args.supervisor.shutdown_grace,
    );
    match served.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sessionvisor: {error:#}");
            ExitCode::FAILURE
        }
    }
}

pub(super) async fn serve(args: ServeArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "sessionvisor: WARNING: listening on {}, not loopback. Requests are not \
             authenticated (AWS signatures are accepted and not verified): anyone who can \
             reach this address can run events in every session.",
            args.listen
        );
    }
    // Bind first: a taken port is reported before any sandbox is set up.
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("sessionvisor: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let registry = match args.supervisor.registry().await {
        Ok(registry) => registry,
        Err(message) => {
            eprintln!("sessionvisor: {message}");
            return ExitCode::from(EXIT_CANNOT_ISOLATE);
        }
    };
    let options = crate::front::http::HttpOptions {
        max_event_bytes: args.supervisor.max_event_bytes,
        shutdown_grace: args.supervisor.shutdown_grace,
    };
    match crate::front::http::serve(registry, listener, options, termination_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sessionvisor: {error:#}");
            ExitCode::FAILURE
        }
    }
}
