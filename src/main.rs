//! The `ocipack` command: arguments are parsed and resolved once, each subcommand calls one
//! library function, and `main` prints the whole error chain and picks the exit code
//! (2: usage or input error, 1: a failed check, verification or operation).

use std::process::ExitCode;

use clap::Parser;

mod cli;

/// Raises the soft limit on open files to the hard limit (at most 65536): input trees are
/// read through one directory descriptor per level, up to 1024 levels deep.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    let want = l.maximum.map_or(65536, |m| m.min(65536));
    if l.current.is_some_and(|c| c < want) {
        l.current = Some(want);
        let _ = setrlimit(Resource::Nofile, l);
    }
}

/// A command-line error as one line, `ocipack: error: …`, like every other error: clap's
/// message without its usage block, escaped (an argument cannot forge a line).
fn usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let msg = ["\n\nUsage:", "\n\nFor more information", "\nUsage:"]
        .iter()
        .filter_map(|cut| text.find(cut))
        .min()
        .map_or(text.as_str(), |i| &text[..i]);
    let msg = msg.trim().strip_prefix("error: ").unwrap_or(msg.trim());
    // clap continues a message on indented lines ("  [possible values: …]"), and adds a
    // tip after a blank line; both join the one line (anything else stays escaped).
    let msg = msg.replace("\n\n  tip:", "; tip:").replace("\n  ", " ");
    format!(
        "ocipack: error: {} (ocipack --help shows the usage)",
        ocipack::show::line(&msg)
    )
}

fn main() -> ExitCode {
    raise_open_file_limit();
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return ExitCode::from(2);
            }
            eprintln!("{}", usage_error(&e));
            return ExitCode::from(2);
        }
    };
    match cli::run(args) {
        // Output cut short by a full disk or an I/O error is a failed operation.
        Ok(0) if cli::stdout_failed() => ExitCode::from(1),
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let mut msg = format!("ocipack: error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                let text = s.to_string();
                if !msg.contains(&text) {
                    msg.push_str(&format!(": {text}"));
                }
                source = s.source();
            }
            // Names inside were escaped where the message was made; this is the last net.
            eprintln!("{}", ocipack::show::line(&msg));
            ExitCode::from(err.exit_code() as u8)
        }
    }
}
