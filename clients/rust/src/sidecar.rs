//! Sidecar mode: start `kodad serve` as a child process, read its ready line, connect with
//! its per-launch token, and stop it when done.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::{Client, ConnectOptions};

/// The kodad binary is missing, failed to start, or was not ready in time; the message ends
/// with the tail of its stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarError(pub String);

impl fmt::Display for SidecarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SidecarError {}

/// What `kodad serve --ready-json` prints once it serves.
#[derive(Debug, Clone, Deserialize)]
pub struct ReadyLine {
    /// The `--listen` value.
    pub listen: String,
    /// Where to connect: host:port or unix:///path.
    pub address: String,
    /// The TCP port (0 for a unix socket).
    pub port: u16,
    /// kodad's process id.
    pub pid: u32,
    /// kodad's version.
    pub version: String,
    /// The per-launch bearer token.
    pub token: String,
}

/// Options of [`spawn_sidecar`].
#[derive(Debug, Clone)]
pub struct SidecarOptions {
    /// The kodad executable and leading arguments (default: `$KODAD_BIN`, else `kodad`).
    pub command: Option<Vec<String>>,
    /// "127.0.0.1:0" (the default: a free port) or "unix:///path/kodad.sock".
    pub listen: String,
    /// More `kodad serve` flags, e.g. `["--data-dir", dir]`.
    pub args: Vec<String>,
    /// How long to wait for the ready line.
    pub ready_timeout: Duration,
}

impl Default for SidecarOptions {
    fn default() -> Self {
        SidecarOptions {
            command: None,
            listen: "127.0.0.1:0".into(),
            args: Vec::new(),
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// A running kodad child with a client connected to it. Call [`Sidecar::stop`] to stop it
/// gracefully; dropping it kills the child.
pub struct Sidecar {
    /// A client using the per-launch token.
    pub client: Client,
    /// The ready line kodad printed.
    pub ready: ReadyLine,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Sidecar {
    /// Closes kodad's stdin (it drains and exits), then kills it if it lingers; its exit code.
    pub async fn stop(mut self) -> Option<i32> {
        stop(&mut self.child, &mut self.stdin, Duration::from_secs(10)).await
    }
}

async fn stop(child: &mut Child, stdin: &mut Option<ChildStdin>, grace: Duration) -> Option<i32> {
    drop(stdin.take());
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok().and_then(|s| s.code()),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    }
}

/// Starts `kodad serve` as a child process with a per-launch token, tied to this process
/// (`--exit-with-parent`), and connects to it.
pub async fn spawn_sidecar(options: SidecarOptions) -> Result<Sidecar, SidecarError> {
    let command = options
        .command
        .unwrap_or_else(|| vec![std::env::var("KODAD_BIN").unwrap_or_else(|_| "kodad".into())]);
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .args(["serve", "--listen", &options.listen, "--ready-json", "--launch-token", "--exit-with-parent"])
        .args(&options.args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SidecarError(format!("cannot start {}: {e}", command[0])))?;
    let mut stdin = child.stdin.take();
    let tail = Arc::new(Mutex::new(VecDeque::<String>::new()));
    let stderr = child.stderr.take().expect("piped");
    let drained = tokio::spawn({
        let tail = tail.clone();
        async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut tail = tail.lock().unwrap();
                tail.push_back(line);
                if tail.len() > 20 {
                    tail.pop_front();
                }
            }
        }
    });
    let text = |tail: &Arc<Mutex<VecDeque<String>>>| {
        let tail = tail.lock().unwrap();
        if tail.is_empty() {
            "(no output)".to_string()
        } else {
            tail.iter().cloned().collect::<Vec<_>>().join("\n")
        }
    };
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    match tokio::time::timeout(options.ready_timeout, stdout.read_line(&mut line)).await {
        Err(_) => {
            stop(&mut child, &mut stdin, Duration::from_secs(1)).await;
            return Err(SidecarError(format!(
                "kodad was not ready within {:?}: {}",
                options.ready_timeout,
                text(&tail)
            )));
        }
        Ok(Ok(0)) | Ok(Err(_)) => {
            let code = stop(&mut child, &mut stdin, Duration::from_secs(10)).await;
            let _ = drained.await;
            return Err(SidecarError(format!(
                "kodad exited with code {} before it was ready: {}",
                code.map_or("?".into(), |c| c.to_string()),
                text(&tail)
            )));
        }
        Ok(Ok(_)) => {}
    }
    let ready: ReadyLine = match serde_json::from_str(&line) {
        Ok(ready) => ready,
        Err(e) => {
            stop(&mut child, &mut stdin, Duration::from_secs(1)).await;
            return Err(SidecarError(format!("kodad printed no ready line ({e}): {line}")));
        }
    };
    // Keep reading stdout so the child never blocks on a full pipe.
    tokio::spawn(async move {
        let mut rest = String::new();
        while matches!(stdout.read_line(&mut rest).await, Ok(n) if n > 0) {
            rest.clear();
        }
    });
    let options = ConnectOptions { token: Some(ready.token.clone()), tls: None };
    match Client::connect_with(&ready.address, options).await {
        Ok(client) => Ok(Sidecar { client, ready, child, stdin }),
        Err(e) => {
            stop(&mut child, &mut stdin, Duration::from_secs(1)).await;
            Err(SidecarError(format!("cannot connect to kodad at {}: {e}", ready.address)))
        }
    }
}
