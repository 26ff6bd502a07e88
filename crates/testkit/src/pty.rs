//! Answering a debconf question on a pseudo-terminal, as an admin at an
//! interactive frontend does: the command runs under `script(1)`, the
//! answer is typed once the prompt shows.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a run on the terminal showed.
#[derive(Debug)]
pub struct Transcript {
    /// The command's exit status.
    pub code: i32,
    /// Everything the terminal showed.
    pub text: String,
}

/// Runs the shell command line `cmdline` on a pseudo-terminal with the
/// environment of `env` (its variables, not its program), types `answer`
/// and Enter once `prompt` shows, and returns the exit status and the
/// transcript.  Panics if the prompt never shows or the run does not end
/// within `limit` (the run is killed then).
pub fn answer_on_a_terminal(
    env: &Command,
    cmdline: &str,
    prompt: &str,
    answer: &str,
    limit: Duration,
) -> Transcript {
    let mut cmd = Command::new("script");
    for (k, v) in env.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut child = cmd
        .args(["-qfec", &format!("{cmdline}; echo \"RC=$?\""), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script(1)");
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let deadline = Instant::now() + limit;
    let mut stdin = child.stdin.take();
    let mut answered = false;
    while !text.contains("RC=") {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no end of the run within {limit:?}:\n{text}");
        }
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        if !answered && text.contains(prompt) {
            stdin
                .as_mut()
                .expect("stdin")
                .write_all(format!("{answer}\n").as_bytes())
                .expect("type the answer");
            answered = true;
        }
    }
    drop(stdin);
    let _ = child.wait();
    assert!(answered, "the question was never shown:\n{text}");
    let code = text
        .split("RC=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .expect("the exit status in the transcript");
    Transcript { code, text }
}
