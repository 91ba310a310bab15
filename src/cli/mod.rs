//! The command line: `run`, `doctor`, `demo`, `serve`, and the `invoke`,
//! `sessions` and `stop` clients of a running `serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod commands;
mod signals;
mod supervisor;

pub use signals::termination_signal;
pub use supervisor::{IsolationMode, LimitArgs, SupervisorArgs};

/// Exit status when sessions cannot be isolated (or the command line is wrong).
pub const EXIT_CANNOT_ISOLATE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "sessionvisor",
    version,
    about = "One isolated, sandboxed worker process per agent session"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read events as JSON lines on stdin; write one result line per event on stdout.
    Run(RunArgs),
    /// Report what this host supports and the isolation sessions will get.
    Doctor(DoctorArgs),
    /// Run the seed's session A/B story, isolated and then not, and show the difference.
    Demo(DemoArgs),
    /// Serve the AgentCore Runtime HTTP contract (and its AWS data-plane routes).
    Serve(ServeArgs),
    /// Send one event to a running `sessionvisor serve`; print its result or its stream.
    Invoke(InvokeArgs),
    /// List the sessions of a running `sessionvisor serve`.
    Sessions(SessionsArgs),
    /// Stop one session of a running `sessionvisor serve` at once.
    Stop(StopArgs),
    /// Load-test sessions: many at once, every answer checked for misroutes and
    /// leaks; reports latencies, throughput and memory. Exit status 0 when all
    /// passed, 1 when any session saw another's answer or data, 3 when events
    /// failed (or the run was interrupted), 2 when sessions cannot be isolated.
    Stress(crate::stress::StressArgs),
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default: requests are not authenticated.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub supervisor: SupervisorArgs,
}

/// Where a client subcommand finds the server.
#[derive(Args)]
pub struct ServerUrl {
    /// Base URL of `sessionvisor serve`.
    #[arg(
        long,
        env = "SESSIONVISOR_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
}

#[derive(Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    pub server: ServerUrl,
    /// The session id; without it the server starts a new session and the id
    /// is printed on stderr.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// The event as JSON, or `-` (the default) to read it from stdin.
    #[arg(value_name = "JSON", default_value = "-")]
    pub payload: String,
}

#[derive(Args)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub server: ServerUrl,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub server: ServerUrl,
    #[arg(long, value_name = "ID")]
    pub session: String,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub supervisor: SupervisorArgs,
}

#[derive(Args)]
pub struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Python interpreter for the bundled echo agent.
    #[arg(long, default_value = "python3")]
    python: String,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_CANNOT_ISOLATE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sessionvisor: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Run(args) => commands::run(args).await,
            Command::Doctor(args) => {
                crate::doctor::run(args.json, args.state_dir, args.limits.limits()).await
            }
            Command::Demo(args) => crate::demo::run(&args.python).await,
            Command::Serve(args) => commands::serve(args).await,
            Command::Invoke(args) => {
                crate::client::invoke(&args.server.url, args.session, &args.payload).await
            }
            Command::Sessions(args) => crate::client::sessions(&args.server.url, args.json).await,
            Command::Stop(args) => crate::client::stop(&args.server.url, &args.session).await,
            Command::Stress(args) => crate::stress::run(args).await,
        }
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
