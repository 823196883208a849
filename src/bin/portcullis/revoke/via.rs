//! `scripts/revoke --via URL`: the same revocation through the deployed Worker's admin API,
//! which also reaches the persons' Durable Objects (wrangler cannot).

use std::process::{Command, Stdio};

use super::Args;

/// The admin API's request body for what the arguments name.
fn admin_body(a: &Args) -> serde_json::Value {
    match (&a.email, &a.sub, &a.session, &a.app_password) {
        (Some(email), ..) => serde_json::json!({ "email": email }),
        (_, Some(sub), ..) => serde_json::json!({ "sub": sub }),
        (_, _, Some(hash), _) => serde_json::json!({ "session": hash.to_string() }),
        (.., Some(id)) => serde_json::json!({ "app_password": id.to_string() }),
        _ => serde_json::json!({ "all": true }),
    }
}

/// POSTs to the Worker's admin API in Node (which the owner's tools already run on): the
/// token goes through the environment, never the command line.
const ADMIN_CALL: &str = r#"
import http from 'node:http';
import https from 'node:https';
const url = new URL('/.portcullis/admin/revoke', process.env.PORTCULLIS_VIA);
const [address, port] = (process.env.PORTCULLIS_CONNECT_TO || '').split(':');
const body = process.env.PORTCULLIS_BODY;
const secure = url.protocol === 'https:' && !address;
const req = (secure ? https : http).request({
  host: address || url.hostname,
  port: port || url.port || (secure ? 443 : 80),
  path: url.pathname,
  method: 'POST',
  headers: { host: url.host, authorization: `Bearer ${process.env.ADMIN_TOKEN}`, 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body) },
}, (res) => {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (c) => { text += c; });
  res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body: text })));
});
req.on('error', (e) => process.stdout.write(JSON.stringify({ error: e.message })));
req.end(body);
"#;

/// Revokes through the deployed Worker's admin API (`--via`).
pub(super) fn revoke(a: &Args, via: &str) -> Result<bool, String> {
    let token = std::env::var("ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or("--via needs the Worker's ADMIN_TOKEN in the environment")?;
    let output = Command::new("node")
        .args(["--input-type=module", "-e", ADMIN_CALL])
        .env("PORTCULLIS_VIA", via)
        .env(
            "PORTCULLIS_CONNECT_TO",
            a.connect_to.as_deref().unwrap_or_default(),
        )
        .env("PORTCULLIS_BODY", admin_body(a).to_string())
        .env("ADMIN_TOKEN", token)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run node: {e}"))?;
    let answer: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|_| "the admin API call printed nothing")?;
    if let Some(error) = answer.get("error").and_then(|e| e.as_str()) {
        return Err(format!("{via}: {error}"));
    }
    let status = answer.get("status").and_then(|s| s.as_u64()).unwrap_or(0);
    let body = answer
        .get("body")
        .and_then(|b| b.as_str())
        .unwrap_or_default();
    let revoked = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|b| b.get("revoked").and_then(|n| n.as_u64()));
    match (status, revoked) {
        (200, Some(n)) => {
            say!("Revoked {n} credential(s) through the Worker at {via} (with PEOPLE bound, every location refuses them within revocation_check).");
            Ok(true)
        }
        _ => Err(format!("{via}: the admin API answered {status}: {body}")),
    }
}
