//! `portcullis`: the owner's tools, built from the same core as the worker, so the
//! configuration rules, the token and key formats and the KV key layout exist once.
//! The `scripts/` wrappers are the names people use.

/// `println!` for the owner's tools: when the reader goes away (`| head`), the tool ends
/// quietly instead of panicking on the broken pipe.
macro_rules! say {
    ($($arg:tt)*) => {
        if let Err(code) = crate::write_line(&mut std::io::stdout(), format_args!($($arg)*)) {
            std::process::exit(code);
        }
    };
}

/// Writes one line; `Err` with the exit code when it cannot: 0 when the reader has gone
/// away (it asked for no more), 1 (said on stderr) for any other failure.
fn write_line(out: &mut impl std::io::Write, line: std::fmt::Arguments) -> Result<(), i32> {
    match writeln!(out, "{line}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(0),
        Err(e) => {
            eprintln!("cannot write the output: {e}");
            Err(1)
        }
    }
}

mod assertion_key;
mod check_config;
mod revoke;
mod service_token;

use std::process::ExitCode;

const USAGE: &str = "usage: portcullis <command> [arguments]

  check-config [wrangler.toml] [--env NAME] [--dev-vars FILE] [--json]
  service-token <name> [--json]
  assertion-key [ES256|EdDSA] [--json]
  revoke (--email ADDRESS | --sub SUB | --session HASH | --all) [--list] [--local] ...";

/// The arguments of a command taking at most one positional value and `--json`.
pub struct Simple {
    pub value: Option<String>,
    pub json: bool,
}

pub fn simple_args(args: impl Iterator<Item = String>, usage: &str) -> Result<Simple, String> {
    let mut out = Simple {
        value: None,
        json: false,
    };
    for arg in args {
        match arg.as_str() {
            "--json" => out.json = true,
            other if other.starts_with('-') || out.value.is_some() => return Err(usage.into()),
            _ => out.value = Some(arg),
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let result = match command.as_deref() {
        Some("check-config") => check_config::run(args),
        Some("service-token") => service_token::run(args),
        Some("assertion-key") => assertion_key::run(args),
        Some("revoke") => revoke::run(args),
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::write_line;

    #[test]
    fn a_reader_that_went_away_ends_the_output_quietly() {
        let mut written = Vec::new();
        assert_eq!(write_line(&mut written, format_args!("a {}", 1)), Ok(()));
        assert_eq!(written, b"a 1\n");
        let (reader, mut writer) = std::io::pipe().unwrap();
        drop(reader);
        assert_eq!(write_line(&mut writer, format_args!("more")), Err(0));
    }
}
