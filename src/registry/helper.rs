//! Docker credential helpers: `docker-credential-NAME get`, run as docker/cli runs them.
//!
//! The protocol (docker/docker-credential-helpers): the helper is found on `PATH` and run
//! with the argument `get`; standard input holds the server URL (Docker Hub:
//! `https://index.docker.io/v1/`, any other registry: `host[:port]`); on success it prints
//! `{"ServerURL": …, "Username": …, "Secret": …}` on standard output. The user name
//! `<token>` means that the secret is an identity token (an OAuth2 refresh token). On failure
//! it exits non-zero with a message on standard output; `credentials not found in native
//! keychain` means there are none, and then docker (and ocipack) push anonymously.
//!
//! The helper's output and its standard error never appear in a message: standard error is
//! discarded, standard output is read up to [`OUTPUT_LIMIT`] and only parsed. A failure is
//! described by a text naming the helper, the server and what went wrong (not on `PATH`,
//! exit status, no answer within the timeout, an answer that is not credentials), which the
//! client turns into an error through its redactor. A helper that does not answer within the
//! timeout is killed.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::auth::Credentials;

/// The most of a helper's standard output that is read.
pub const OUTPUT_LIMIT: u64 = 64 * 1024;

/// What a helper prints when it holds no credentials for the server.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The user name with which a helper marks an identity token.
const TOKEN_USERNAME: &str = "<token>";

/// Runs `docker-credential-NAME get` for `server_url`; `None` if the helper has no
/// credentials for it. The helper must answer within `timeout`. The error text holds nothing
/// the helper printed.
pub fn get(name: &str, server_url: &str, timeout: Duration) -> Result<Option<Credentials>, String> {
    let program = format!("docker-credential-{name}");
    let fail = |problem: &str| {
        format!(
            "getting the credentials for {server_url} from the credential helper {program}: \
             {problem}"
        )
    };
    if name.contains(['/', '\0']) {
        return Err(fail("not a valid helper name"));
    }
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => fail("not found on PATH"),
            _ => fail(&format!("cannot be run: {e}")),
        })?;
    // The server URL, then end of input (a URL fits a pipe's buffer: this cannot block).
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server_url.as_bytes());
    }
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let read = (&mut stdout).take(OUTPUT_LIMIT + 1).read_to_end(&mut out);
        let _ = tx.send(read.map(|_| out));
    });
    let deadline = Instant::now() + timeout;
    let kill = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    let too_slow = || fail(&format!("no answer within {} s", timeout.as_secs_f64()));
    let out = match rx.recv_timeout(timeout) {
        Ok(Ok(out)) if out.len() as u64 <= OUTPUT_LIMIT => out,
        Ok(Ok(_)) => {
            kill(&mut child);
            return Err(fail(&format!(
                "it printed more than {} KiB",
                OUTPUT_LIMIT / 1024
            )));
        }
        Ok(Err(e)) => {
            kill(&mut child);
            return Err(fail(&format!("reading its answer failed: {e}")));
        }
        Err(_) => {
            kill(&mut child);
            return Err(too_slow());
        }
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                kill(&mut child);
                return Err(too_slow());
            }
            Err(e) => return Err(fail(&format!("waiting for it failed: {e}"))),
        }
    };
    if !status.success() {
        if String::from_utf8_lossy(&out).trim() == NOT_FOUND {
            return Ok(None);
        }
        let how = match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        };
        return Err(fail(&format!("it failed ({how}; its output is not shown)")));
    }
    parse_answer(&out).ok_or_else(|| {
        fail("its answer is not JSON with Username and Secret strings (it is not shown)")
    })
}

/// The credentials in a helper's answer: `Some(None)` for empty ones, `None` if the answer is
/// not the helper protocol's JSON.
fn parse_answer(out: &[u8]) -> Option<Option<Credentials>> {
    let v: Value = serde_json::from_slice(out).ok()?;
    let field = |name: &str| match v.get(name) {
        None | Some(Value::Null) => Some(""),
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => None,
    };
    if !v.is_object() {
        return None;
    }
    let (username, secret) = (field("Username")?, field("Secret")?);
    if secret.is_empty() {
        return Some(None);
    }
    if username == TOKEN_USERNAME {
        return Some(Some(Credentials::from_identity_token(secret)));
    }
    let c = Credentials::new(username, secret);
    Some(c.is_usable().then_some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let c = parse_answer(br#"{"ServerURL":"x","Username":"alice","Secret":"pw"}"#)
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password()), ("alice", "pw"));
        assert_eq!(c.identity_token(), None);
        let c = parse_answer(br#"{"Username":"<token>","Secret":"refresh-1"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(c.identity_token(), Some("refresh-1"));
        assert!(c.basic_authorization().is_none());
        assert_eq!(
            parse_answer(br#"{"Username":"alice","Secret":""}"#),
            Some(None)
        );
        assert_eq!(
            parse_answer(br#"{"Username":"","Secret":"pw"}"#),
            Some(None)
        );
        assert_eq!(parse_answer(br#"{"Username":"alice","Secret":5}"#), None);
        assert_eq!(parse_answer(b"alice:pw"), None);
        assert_eq!(parse_answer(br#"["alice"]"#), None);
    }
}
