//! `portcullis revoke` (`scripts/revoke`): lists and deletes sessions and app passwords
//! straight in the `SESSIONS` namespace through `wrangler kv`, for an owner with
//! Cloudflare credentials but no `ADMIN_TOKEN`. The key layout is the worker's own
//! (`session::index`, `app_password::registry`).

use std::process::{Command, Stdio};

use portcullis::app_password::{credential, registry as passwords, Summary as PasswordSummary};
use portcullis::config::{MAX_APP_PASSWORD_LIFETIME, MAX_SESSION_LIFETIME};
use portcullis::pages::utc;
use portcullis::session::index::{self, Summary};
use serde::{Deserialize, Serialize};

const USAGE: &str =
    "usage: scripts/revoke (--email ADDRESS | --sub SUB | --session HASH | --app-password ID | --all)
                      [--list] [--local] [--config wrangler.toml] [--env NAME] [--persist-to DIR]

  --email, --sub, --all   the person's (everyone's) sessions and app passwords
  --session HASH          one session; --app-password ID: one app password (ap_...)
  --list                  only show what matches
  --local                 the local development state (scripts/dev): add --config dev/wrangler.toml

Writes a tombstone for each (as the worker's own revocation does, so a re-validation in
flight cannot write one back), then deletes the records and their index keys. Running
isolates may still accept a deleted session for up to session_cache (default 30 s), and KV
deletions take up to about 60 s to reach every location; the admin API and the sessions
page also clear the isolate that serves them.";

#[derive(Default)]
struct Args {
    email: Option<String>,
    sub: Option<String>,
    session: Option<String>,
    app_password: Option<String>,
    all: bool,
    list: bool,
    /// Passed on to wrangler: `--binding SESSIONS`, `--config`, `--env`, `--persist-to`,
    /// and `--local` or `--remote`.
    wrangler: Vec<String>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        wrangler: vec!["--binding".into(), "SESSIONS".into()],
        ..Args::default()
    };
    let mut local = false;
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| USAGE.to_string());
        match arg.as_str() {
            "--email" => a.email = Some(value()?),
            "--sub" => a.sub = Some(value()?),
            "--session" => a.session = Some(value()?),
            "--app-password" => a.app_password = Some(value()?),
            "--all" => a.all = true,
            "--list" => a.list = true,
            "--local" => local = true,
            "--config" | "--env" | "--persist-to" => {
                let v = value()?;
                a.wrangler.extend([arg, v]);
            }
            _ => return Err(USAGE.into()),
        }
    }
    let chosen = [
        a.email.is_some(),
        a.sub.is_some(),
        a.session.is_some(),
        a.app_password.is_some(),
        a.all,
    ];
    if chosen.iter().filter(|c| **c).count() != 1 {
        return Err(USAGE.into());
    }
    // Both become parts of KV keys (and a tombstone is written for each): only their own
    // forms are taken.
    if let Some(hash) = &a.session {
        if !index::is_session_hash(hash) {
            return Err(format!(
                "--session takes a session's hash (43 characters of A-Z, a-z, 0-9, - and _, as \
                 --list and the sessions page show it), not {hash:?}"
            ));
        }
    }
    if let Some(id) = &a.app_password {
        if !credential::is_id(id) {
            return Err(format!(
                "--app-password takes an app password's ID (ap_ and 24 lower-case hex digits, \
                 as --list shows it), not {id:?}"
            ));
        }
    }
    a.wrangler
        .push(if local { "--local" } else { "--remote" }.into());
    Ok(a)
}

fn wrangler(args: &[&str], options: &[String]) -> Result<String, String> {
    let output = Command::new("npx")
        .arg("wrangler")
        .arg("kv")
        .args(args)
        .args(options)
        .env("WRANGLER_SEND_METRICS", "false")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run npx wrangler: {e}"))?;
    if !output.status.success() {
        return Err(format!("wrangler kv {} failed", args.join(" ")));
    }
    String::from_utf8(output.stdout).map_err(|e| e.to_string())
}

/// One key as `wrangler kv key list` prints it.
#[derive(Deserialize)]
struct ListedKey {
    name: String,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

/// The app passwords the arguments name: `(summary, index key)`.
fn app_passwords(a: &Args) -> Result<Vec<(PasswordSummary, String)>, String> {
    if a.session.is_some() {
        return Ok(Vec::new());
    }
    let prefix = match &a.sub {
        Some(sub) => passwords::user_prefix(sub),
        None => passwords::USER_PREFIX.to_string(),
    };
    let listed: Vec<ListedKey> = serde_json::from_str(&wrangler(
        &["key", "list", "--prefix", &prefix],
        &a.wrangler,
    )?)
    .map_err(|e| format!("wrangler kv key list printed something else: {e}"))?;
    Ok(listed
        .into_iter()
        .filter_map(|k| {
            let summary: PasswordSummary = serde_json::from_value(k.metadata?).ok()?;
            Some((summary, k.name))
        })
        .filter(|(s, _)| {
            a.email.as_ref().is_none_or(|email| {
                s.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
        })
        .filter(|(s, _)| a.app_password.as_ref().is_none_or(|id| *id == s.id))
        .collect())
}

pub fn run(args: impl Iterator<Item = String>) -> Result<bool, String> {
    let a = parse(args)?;
    let found_passwords = app_passwords(&a)?;
    if a.app_password.is_some() {
        return finish(&a, Vec::new(), &found_passwords);
    }
    let prefix = match &a.sub {
        Some(sub) => index::user_prefix(sub),
        None => index::USER_PREFIX.to_string(),
    };
    let listed: Vec<ListedKey> = serde_json::from_str(&wrangler(
        &["key", "list", "--prefix", &prefix],
        &a.wrangler,
    )?)
    .map_err(|e| format!("wrangler kv key list printed something else: {e}"))?;
    let sessions: Vec<(String, &str, Summary)> = listed
        .iter()
        .filter_map(|k| {
            let hash = index::session_hash_of(&k.name)?.to_string();
            let metadata = k.metadata.as_ref().map(|m| m.to_string());
            let summary = Summary::from_metadata(metadata.as_deref())?;
            Some((hash, k.name.as_str(), summary))
        })
        .filter(|(_, _, s)| a.sub.as_ref().is_none_or(|sub| s.is_of(sub)))
        .filter(|(_, _, s)| {
            a.email.as_ref().is_none_or(|email| {
                s.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
        })
        .filter(|(hash, _, _)| a.session.as_ref().is_none_or(|h| h == hash))
        .collect();

    let sessions: Vec<(String, String, Summary)> = sessions
        .into_iter()
        .map(|(hash, key, s)| (hash, key.to_string(), s))
        .collect();
    finish(&a, sessions, &found_passwords)
}

/// Shows what matched and, unless `--list`, deletes it.
fn finish(
    a: &Args,
    sessions: Vec<(String, String, Summary)>,
    found_passwords: &[(PasswordSummary, String)],
) -> Result<bool, String> {
    if sessions.is_empty() && a.app_password.is_none() {
        println!("No matching sessions.");
    }
    for (p, _) in found_passwords {
        let who = p.email.as_deref().unwrap_or(&p.sub);
        let last = p.last_used.map_or("never used".to_string(), |t| {
            format!("last used {}", utc(t))
        });
        println!(
            "{}  {who}  {}  \"{}\"  until {}  {last}",
            p.id,
            p.app,
            p.label,
            utc(p.expires)
        );
    }
    if found_passwords.is_empty()
        && (a.app_password.is_some() || a.sub.is_some() || a.email.is_some())
    {
        println!("No matching app passwords.");
    }
    for (hash, _, s) in &sessions {
        let who = s.email.as_deref().unwrap_or(&s.sub);
        let ua = s.user_agent.as_deref().unwrap_or_default();
        let line = format!(
            "{hash}  {who}  {}  since {}  until {}  {ua}",
            s.host,
            utc(s.created),
            utc(s.expires)
        );
        println!("{}", line.trim_end());
    }
    if a.list {
        return Ok(true);
    }

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let mut tombstones: Vec<KvPut> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    for (p, index_key) in found_passwords {
        tombstones.push(KvPut::tombstone(&p.id, p.expires, now));
        keys.push(passwords::record_key(&p.id));
        keys.push(index_key.clone());
    }
    if let (Some(id), true) = (&a.app_password, found_passwords.is_empty()) {
        // Not in the index (yet): the record alone, and a tombstone for as long as any
        // app password could last (its own expiry is not known here).
        tombstones.push(KvPut::tombstone(id, now + UNKNOWN_EXPIRY, now));
        keys.push(passwords::record_key(id));
    }
    for (hash, index_key, s) in &sessions {
        tombstones.push(KvPut::tombstone(hash, s.expires, now));
        keys.push(index::session_key(hash));
        keys.push(index_key.clone());
        if let Some(sid) = &s.sid {
            keys.push(index::sid_key(sid, hash));
        }
    }
    if let (Some(hash), true) = (&a.session, sessions.is_empty()) {
        tombstones.push(KvPut::tombstone(hash, now + UNKNOWN_EXPIRY, now));
        keys.push(index::session_key(hash));
    }
    // Tombstones first, as the worker revokes: if writing them fails, nothing is deleted
    // and the command can be run again.
    if !tombstones.is_empty() {
        bulk(a, "put", &tombstones)?;
    }
    if !keys.is_empty() {
        bulk(a, "delete", &keys)?;
    }
    println!(
        "Revoked {} session(s) and {} app password(s).",
        sessions.len(),
        found_passwords.len()
    );
    Ok(true)
}

/// How long a tombstone is kept for a session or app password that is not in the index,
/// whose expiry is therefore not known: the longest either can last.
const UNKNOWN_EXPIRY: u64 = if MAX_SESSION_LIFETIME > MAX_APP_PASSWORD_LIFETIME {
    MAX_SESSION_LIFETIME
} else {
    MAX_APP_PASSWORD_LIFETIME
};

/// One entry of a `wrangler kv bulk put` file.
#[derive(Serialize)]
struct KvPut {
    key: String,
    value: &'static str,
    expiration_ttl: u64,
}

impl KvPut {
    /// The tombstone of a session (by its hash) or app password (by its ID), kept until
    /// what it revokes would have expired, as the worker keeps it.
    fn tombstone(id: &str, expires: u64, now: u64) -> Self {
        KvPut {
            key: index::revoked_key(id),
            value: index::TOMBSTONE,
            expiration_ttl: index::ttl_until(expires, now),
        }
    }
}

/// `wrangler kv bulk put|delete` with `entries` as its JSON file.
fn bulk(a: &Args, verb: &str, entries: &impl Serialize) -> Result<(), String> {
    let file = std::env::temp_dir().join(format!(
        "portcullis-revoke-{verb}-{}.json",
        std::process::id()
    ));
    let text = serde_json::to_string(entries).map_err(|e| e.to_string())?;
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    let path = file.to_string_lossy().to_string();
    let mut args = vec!["bulk", verb, path.as_str()];
    if verb == "delete" {
        args.push("--force");
    }
    let done = wrangler(&args, &a.wrangler);
    let _ = std::fs::remove_file(&file);
    done.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn a_session_or_app_password_is_taken_only_in_its_own_form() {
        let hash = "A".repeat(42) + "_";
        assert_eq!(args(&["--session", &hash]).unwrap().session, Some(hash));
        let id = "ap_0123456789abcdef01234567";
        assert_eq!(
            args(&["--app-password", id])
                .unwrap()
                .app_password
                .as_deref(),
            Some(id)
        );
        for bad in [
            "",
            "x",
            &"A".repeat(44),
            &("A".repeat(42) + ":"),
            &("A".repeat(42) + "="),
        ] {
            let e = args(&["--session", bad]).err().unwrap();
            assert!(e.starts_with("--session takes"), "{bad:?}: {e}");
        }
        for bad in ["ap_0123", "session:x", "ap_0123456789ABCDEF01234567"] {
            let e = args(&["--app-password", bad]).err().unwrap();
            assert!(e.starts_with("--app-password takes"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_tombstone_lasts_as_long_as_what_it_revokes() {
        let t = KvPut::tombstone("h", 10_000, 1_000);
        assert_eq!(
            (t.key.as_str(), t.value, t.expiration_ttl),
            ("revoked:h", "revoked", 9_000)
        );
        // KV's minimum, for one about to expire (or already expired).
        assert_eq!(KvPut::tombstone("h", 1_010, 1_000).expiration_ttl, 60);
        assert_eq!(KvPut::tombstone("h", 0, 1_000).expiration_ttl, 60);
        assert_eq!(
            serde_json::to_string(&[KvPut::tombstone("h", 2_000, 1_000)]).unwrap(),
            r#"[{"key":"revoked:h","value":"revoked","expiration_ttl":1000}]"#
        );
    }
}
