//! `sessionvisor demo`: the seed tutorial's session A/B story, run through the
//! real supervisor with the bundled echo agent, once isolated and once with
//! `--isolation none`, printed side by side.

use std::process::{ExitCode, Stdio};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// One step of the story and what an isolated run must answer.
struct Step {
    session: &'static str,
    action: &'static str,
    message: &'static str,
    /// The answer must contain this when sessions are isolated.
    isolated_answer: &'static str,
    /// Whether this step is where a leak would show.
    probes_isolation: bool,
}

const STORY: &[Step] = &[
    Step {
        session: "A",
        action: "write",
        message: "secret of session A",
        isolated_answer: "written",
        probes_isolation: false,
    },
    Step {
        session: "B",
        action: "read",
        message: "",
        isolated_answer: "FILE_NOT_FOUND",
        probes_isolation: true,
    },
    Step {
        session: "A",
        action: "read",
        message: "",
        isolated_answer: "secret of session A",
        probes_isolation: false,
    },
    Step {
        session: "A",
        action: "echo",
        message: "Hi, my name is Alice",
        isolated_answer: "",
        probes_isolation: false,
    },
    Step {
        session: "B",
        action: "echo",
        message: "What is my name?",
        isolated_answer: "don't know",
        probes_isolation: true,
    },
    Step {
        session: "A",
        action: "echo",
        message: "What is my name?",
        isolated_answer: "Alice",
        probes_isolation: false,
    },
];

/// A supervisor child process driven one event at a time.
struct Supervisor {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Supervisor {
    fn start(python: &str, isolation: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the sessionvisor binary")?;
        // A copy every session uid can open, wherever this tree was cloned.
        let agent = crate::assets::echo_agent().context("writing the bundled echo agent")?;
        let mut child = tokio::process::Command::new(exe)
            .args([
                "run",
                "--isolation",
                isolation,
                "--python",
                python,
                "--handler",
            ])
            .arg(format!("{}:handler", agent.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // The shared run's warning is the point of the table; keep the table clean.
            .stderr(if isolation == "none" {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .kill_on_drop(true)
            .spawn()
            .context("starting `sessionvisor run`")?;
        let stdin = child.stdin.take().context("supervisor stdin")?;
        let stdout = child.stdout.take().context("supervisor stdout")?;
        Ok(Supervisor {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        })
    }

    /// Sends one event and returns the text the agent answered.
    async fn ask(&mut self, session_id: &str, step: &Step) -> anyhow::Result<String> {
        let event =
            json!({"session_id": session_id, "action": step.action, "message": step.message});
        self.stdin
            .write_all(format!("{event}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        let line = self
            .stdout
            .next_line()
            .await?
            .context("the supervisor closed its output early")?;
        let reply: Value =
            serde_json::from_str(&line).context("parsing the supervisor's output")?;
        if reply["ok"] != json!(true) {
            bail!("event failed: {}", reply["error"]);
        }
        let body: Value = reply["response"]["body"]
            .as_str()
            .and_then(|body| serde_json::from_str(body).ok())
            .unwrap_or(Value::Null);
        let text = match step.action {
            "write" => body["status"].as_str(),
            "read" => body["content"].as_str(),
            _ => body["output"].as_str(),
        };
        Ok(text.unwrap_or("?").to_string())
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        drop(self.stdin);
        let status = self.child.wait().await?;
        if !status.success() {
            bail!("the supervisor exited with {status}");
        }
        Ok(())
    }
}

async fn play(python: &str, isolation: &str) -> anyhow::Result<Vec<String>> {
    let mut supervisor = Supervisor::start(python, isolation)?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut answers = Vec::new();
    for step in STORY {
        let session_id = format!("demo-session-{}-{}", step.session, &run[..8]);
        answers.push(supervisor.ask(&session_id, step).await?);
    }
    supervisor.finish().await?;
    Ok(answers)
}

fn clip(text: &str, width: usize) -> String {
    let mut clipped: String = text.chars().take(width).collect();
    if text.chars().count() > width {
        clipped.pop();
        clipped.push('…');
    }
    clipped
}

pub async fn run(python: &str) -> ExitCode {
    let isolated = match play(python, "sandbox").await {
        Ok(answers) => answers,
        Err(error) => {
            eprintln!("sessionvisor demo: the isolated run failed: {error:#}");
            return ExitCode::from(crate::cli::EXIT_CANNOT_ISOLATE);
        }
    };
    let shared = play(python, "none").await;
    // The shared run wrote to the host's real /tmp, as local tools do; tidy up.
    if std::fs::read_to_string("/tmp/session.txt").is_ok_and(|text| text == STORY[0].message) {
        let _ = std::fs::remove_file("/tmp/session.txt");
    }

    println!("\nThe seed's session A/B story, through `sessionvisor run --handler worker/examples/echo_agent.py`\n");
    println!(
        "{:<2} {:<4} {:<6} {:<22} | {:<34} | {:<34}",
        "#",
        "who",
        "action",
        "message",
        "sandboxed (one worker per session)",
        "--isolation none (shared worker)"
    );
    println!("{}", "-".repeat(112));
    let mut held = true;
    let mut leaked = 0;
    for (index, step) in STORY.iter().enumerate() {
        let ours = &isolated[index];
        let ok = ours.contains(step.isolated_answer);
        held &= ok;
        let mark = if ok { "ok" } else { "WRONG" };
        let theirs = match &shared {
            Ok(answers) => {
                let answer = &answers[index];
                let leak = step.probes_isolation && !answer.contains(step.isolated_answer);
                leaked += usize::from(leak);
                format!("{}{}", clip(answer, 26), if leak { "  LEAK" } else { "" })
            }
            Err(_) => "(failed)".into(),
        };
        println!(
            "{:<2} {:<4} {:<6} {:<22} | {:<34} | {:<34}",
            index + 1,
            step.session,
            step.action,
            clip(step.message, 22),
            format!("{}  {mark}", clip(ours, 28)),
            theirs
        );
    }
    println!();
    if let Err(error) = &shared {
        println!("the --isolation none run failed: {error:#}");
    } else {
        println!("--isolation none: {leaked} of 2 cross-session probes leaked session A's data to session B.");
    }
    if held {
        println!("sandboxed: isolation held. B never saw A's file or A's conversation.");
        ExitCode::SUCCESS
    } else {
        println!("sandboxed: ISOLATION FAILED: see the rows marked WRONG.");
        ExitCode::FAILURE
    }
}
