//! `portcullis`: the owner's tools, built from the same core as the worker, so the
//! configuration rules, the token and key formats and the KV key layout exist once.
//! The `scripts/` wrappers are the names people use.

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
