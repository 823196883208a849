//! `portcullis revoke` (`scripts/revoke`): lists and revokes sessions and app passwords
//! straight in the `SESSIONS` namespace through `wrangler kv`, for an owner with
//! Cloudflare credentials but no `ADMIN_TOKEN`. It revokes through the worker's own code
//! (`grant::tombstone::revoke_all` over the [`Store`] below), so the keys, tombstones and
//! their order are the worker's.

use std::future::Future;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::task::{Context, Poll, Waker};

use portcullis::app_password::{registry as passwords, AppPasswordSummary};
use portcullis::config::{MAX_APP_PASSWORD_LIFETIME, MAX_SESSION_LIFETIME};
use portcullis::grant::tombstone;
use portcullis::grant::{Doomed, Tombstoned};
use portcullis::pages::utc;
use portcullis::people::Unbound;
use portcullis::session::index::SessionSummary;
use portcullis::session::registry as sessions;
use portcullis::store::keys::{self, AppPasswordId, Grant, SessionHash};
use portcullis::store::{Entry, ListPage, Listed, Store, StoreError};
use serde::{Deserialize, Serialize};

mod via;

const USAGE: &str =
    "usage: scripts/revoke (--email ADDRESS | --sub SUB | --session HASH | --app-password ID | --all)
                      [--list] [--local] [--config wrangler.toml] [--env NAME] [--persist-to DIR]

  --email, --sub, --all   the person's (everyone's) sessions and app passwords
  --session HASH          one session; --app-password ID: one app password (ap_...)
  --list                  only show what matches
  --local                 the local development state (scripts/dev): add --config dev/wrangler.toml
  --via URL               revoke through the deployed Worker's admin API at URL (any host it
                          serves), with ADMIN_TOKEN from the environment: with PEOPLE bound,
                          every location then refuses them within revocation_check
  --connect-to A:P        with --via: connect to this address (plain HTTP) instead

Writes a tombstone for each (as the worker's own revocation does, so a re-validation in
flight cannot write one back), then deletes the records and their index keys. Running
isolates may still accept a deleted session for up to session_cache (default 30 s), and KV
deletions take up to about 60 s to reach every location; the admin API and the sessions
page also clear the isolate that serves them.";

#[derive(Default)]
struct Args {
    email: Option<String>,
    sub: Option<String>,
    session: Option<SessionHash>,
    app_password: Option<AppPasswordId>,
    all: bool,
    list: bool,
    /// Passed on to wrangler: `--binding SESSIONS`, `--config`, `--env`, `--persist-to`,
    /// and `--local` or `--remote`.
    wrangler: Vec<String>,
    /// `--via`: the Worker whose admin API revokes (its persons' objects included).
    via: Option<String>,
    /// `--connect-to`: where to reach it instead (plain HTTP).
    connect_to: Option<String>,
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
            "--session" => a.session = Some(session_hash(&value()?)?),
            "--app-password" => a.app_password = Some(app_password_id(&value()?)?),
            "--all" => a.all = true,
            "--list" => a.list = true,
            "--local" => local = true,
            "--via" => a.via = Some(value()?),
            "--connect-to" => a.connect_to = Some(value()?),
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
    a.wrangler
        .push(if local { "--local" } else { "--remote" }.into());
    Ok(a)
}

// Both become parts of KV keys (and a tombstone is written for each): only their own forms
// are taken.
fn session_hash(text: &str) -> Result<SessionHash, String> {
    SessionHash::parse(text).ok_or_else(|| {
        format!(
            "--session takes a session's hash (43 characters of A-Z, a-z, 0-9, - and _, as \
             --list and the sessions page show it), not {text:?}"
        )
    })
}

fn app_password_id(text: &str) -> Result<AppPasswordId, String> {
    AppPasswordId::parse(text).ok_or_else(|| {
        format!(
            "--app-password takes an app password's ID (ap_ and 24 lower-case hex digits, \
             as --list shows it), not {text:?}"
        )
    })
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

/// Every key under `prefix`, with its metadata.
fn list(a: &Args, prefix: &str) -> Result<Vec<Listed>, String> {
    let kv = WranglerKv {
        options: &a.wrangler,
    };
    Ok(now_or_never(kv.list(prefix, None))?.map_err(|e| e.0)?.keys)
}

/// The app passwords the arguments name: `(summary, index key)`.
fn app_passwords(a: &Args) -> Result<Vec<(AppPasswordSummary, String)>, String> {
    if a.session.is_some() {
        return Ok(Vec::new());
    }
    let prefix = match &a.sub {
        Some(sub) => passwords::user_prefix(sub),
        None => passwords::USER_PREFIX.to_string(),
    };
    Ok(list(a, &prefix)?
        .into_iter()
        .filter_map(|k| {
            let summary: AppPasswordSummary = serde_json::from_str(&k.metadata?).ok()?;
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
    if let (Some(via), false) = (&a.via, a.list) {
        return via::revoke(&a, via);
    }
    let found_passwords = app_passwords(&a)?;
    if a.app_password.is_some() {
        return finish(&a, Vec::new(), &found_passwords);
    }
    let prefix = match &a.sub {
        Some(sub) => keys::user_prefix(sub),
        None => keys::USER_PREFIX.to_string(),
    };
    let listed = list(&a, &prefix)?;
    let sessions: Vec<(SessionHash, &str, SessionSummary)> = listed
        .iter()
        .filter_map(|k| {
            let hash = keys::session_hash_of(&k.name)?;
            let summary = SessionSummary::from_metadata(k.metadata.as_deref())?;
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

    let sessions: Vec<(SessionHash, String, SessionSummary)> = sessions
        .into_iter()
        .map(|(hash, key, s)| (hash, key.to_string(), s))
        .collect();
    finish(&a, sessions, &found_passwords)
}

/// Prints what matched: app passwords, then sessions, one a line.
fn show(
    a: &Args,
    sessions: &[(SessionHash, String, SessionSummary)],
    found_passwords: &[(AppPasswordSummary, String)],
) {
    if sessions.is_empty() && a.app_password.is_none() {
        say!("No matching sessions.");
    }
    for (p, _) in found_passwords {
        let who = p.email.as_deref().unwrap_or(&p.sub);
        let last = p.last_used.map_or("never used".to_string(), |t| {
            format!("last used {}", utc(t))
        });
        say!(
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
        say!("No matching app passwords.");
    }
    for (hash, _, s) in sessions {
        let who = s.email.as_deref().unwrap_or(&s.sub);
        let ua = s.user_agent.as_deref().unwrap_or_default();
        let line = format!(
            "{hash}  {who}  {}  since {}  until {}  {ua}",
            s.host,
            utc(s.created),
            utc(s.expires)
        );
        say!("{}", line.trim_end());
    }
}

/// Shows what matched and, unless `--list`, revokes it.
fn finish(
    a: &Args,
    sessions: Vec<(SessionHash, String, SessionSummary)>,
    found_passwords: &[(AppPasswordSummary, String)],
) -> Result<bool, String> {
    show(a, &sessions, found_passwords);
    if a.list {
        return Ok(true);
    }

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    // Listed ones as their summaries name them; one named but not listed (not in the index
    // yet) by its record alone, with a tombstone for as long as any could last. Records
    // are deleted without being read first, as the old listing may lag.
    let mut doomed: Vec<Doomed> = Vec::new();
    for (p, index_key) in found_passwords {
        doomed.push(listed(passwords::doomed(&p.id, p, true), index_key));
    }
    if let (Some(id), true) = (&a.app_password, found_passwords.is_empty()) {
        doomed.push(unlisted(
            Grant::AppPassword(id),
            passwords::record_key(id),
            now,
        ));
    }
    for (hash, index_key, s) in &sessions {
        doomed.push(listed(sessions::doomed(hash, s, true), index_key));
    }
    if let (Some(hash), true) = (&a.session, sessions.is_empty()) {
        doomed.push(unlisted(Grant::Session(hash), keys::session_key(hash), now));
    }
    if !doomed.is_empty() {
        let kv = WranglerKv {
            options: &a.wrangler,
        };
        // Wrangler reaches KV, not the persons' objects: this revocation is seen elsewhere
        // as KV propagates (see the warning `revoke` prints when PEOPLE is bound).
        let recorded =
            now_or_never(tombstone::revoke_all(&kv, &Unbound, &doomed, now))?.map_err(|e| e.0)?;
        if binds_people(&a.wrangler) {
            eprintln!(
                "note: this Worker binds PEOPLE, which wrangler cannot reach: other locations \
                 refuse these credentials once KV's change reaches them (up to session_cache + \
                 about 60 s; open WebSockets at the next re-check, within a minute). For the \
                 revocation_check bound, run this with --via URL and ADMIN_TOKEN set (the \
                 Worker's admin API), or use the account page."
            );
        }
        if recorded.tombstoned == Tombstoned::No {
            eprintln!(
                "warning: the tombstones could not be written; the records and index keys were \
                 removed, but a re-validation in flight could write one back. Run this again \
                 when KV accepts writes."
            );
        }
    }
    say!(
        "Revoked {} session(s) and {} app password(s).",
        sessions.len(),
        found_passwords.len()
    );
    Ok(true)
}

/// Whether the wrangler configuration in use (`--config`, else ./wrangler.toml) binds the
/// persons' Durable Objects.
fn binds_people(wrangler: &[String]) -> bool {
    let path = wrangler
        .windows(2)
        .find(|w| w[0] == "--config")
        .map_or("wrangler.toml", |w| w[1].as_str());
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return false;
    };
    doc.get("durable_objects")
        .and_then(|d| d.get("bindings"))
        .and_then(toml::Value::as_array)
        .is_some_and(|b| {
            b.iter()
                .any(|b| b.get("name").and_then(toml::Value::as_str) == Some("PEOPLE"))
        })
}

/// The index key as listed goes too: a summary shortened to fit KV's metadata limit may
/// name a shorter `sub` than the one the key was made from.
fn listed<'a>(mut doomed: Doomed<'a>, index_key: &str) -> Doomed<'a> {
    if !doomed.index_keys.iter().any(|k| k == index_key) {
        doomed.index_keys.push(index_key.to_string());
    }
    doomed
}

/// A session or app password named on the command line but not found in the index.
fn unlisted(grant: Grant<'_>, record_key: String, now: u64) -> Doomed<'_> {
    Doomed {
        // Not known without the record; only the persons' objects (not reached from
        // here) are addressed by it.
        sub: "",
        grant,
        record_key,
        record_exists: true,
        index_keys: Vec::new(),
        expires: now + UNKNOWN_EXPIRY,
    }
}

/// How long a tombstone is kept for a session or app password that is not in the index,
/// whose expiry is therefore not known: the longest either can last.
const UNKNOWN_EXPIRY: u64 = if MAX_SESSION_LIFETIME > MAX_APP_PASSWORD_LIFETIME {
    MAX_SESSION_LIFETIME
} else {
    MAX_APP_PASSWORD_LIFETIME
};

/// Runs a future of [`WranglerKv`], whose operations finish before they return.
fn now_or_never<F: Future>(future: F) -> Result<F::Output, String> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => Err("a KV operation did not finish".into()),
    }
}

/// The `SESSIONS` namespace through `wrangler kv`: one command per operation, and one
/// `wrangler kv bulk` command for several writes or deletes.
struct WranglerKv<'a> {
    /// `--binding SESSIONS`, `--config`, `--env`, `--persist-to`, `--local`/`--remote`.
    options: &'a [String],
}

/// `wrangler kv key get` prints this for a key that does not exist (and exits 0).
const NOT_FOUND: &str = "Value not found\n";

impl Store for WranglerKv<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let value = wrangler(&["key", "get", key], self.options).map_err(StoreError)?;
        Ok((value != NOT_FOUND).then_some(value))
    }

    async fn put(&self, key: &str, entry: Entry<'_>) -> Result<(), StoreError> {
        self.put_many(&[(key.to_string(), entry)]).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.delete_many(&[key.to_string()]).await
    }

    async fn list(&self, prefix: &str, _: Option<&str>) -> Result<ListPage, StoreError> {
        let listed =
            wrangler(&["key", "list", "--prefix", prefix], self.options).map_err(StoreError)?;
        let keys: Vec<ListedKey> = serde_json::from_str(&listed)
            .map_err(|e| StoreError(format!("wrangler kv key list printed something else: {e}")))?;
        let keys = keys
            .into_iter()
            .map(|k| Listed {
                name: k.name,
                metadata: k.metadata.map(|m| m.to_string()),
            })
            .collect();
        Ok(ListPage { keys, cursor: None })
    }

    async fn put_many(&self, entries: &[(String, Entry<'_>)]) -> Result<(), StoreError> {
        let entries: Vec<KvPut> = entries.iter().map(KvPut::of).collect::<Result<_, _>>()?;
        bulk(self.options, "put", &entries).map_err(StoreError)
    }

    async fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        bulk(self.options, "delete", &keys).map_err(StoreError)
    }
}

/// One entry of a `wrangler kv bulk put` file.
#[derive(Serialize)]
struct KvPut {
    key: String,
    value: String,
    expiration_ttl: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<serde_json::Value>,
}

impl KvPut {
    fn of((key, entry): &(String, Entry<'_>)) -> Result<Self, StoreError> {
        let metadata = entry
            .metadata
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| StoreError(format!("metadata of {key}: {e}")))?;
        Ok(KvPut {
            key: key.clone(),
            value: entry.value.to_string(),
            expiration_ttl: entry.ttl.max(60),
            metadata,
        })
    }
}

/// `wrangler kv bulk put|delete` with `entries` as its JSON file, written in a directory
/// only this user can read (the file names keys; nothing else may replace it meanwhile).
fn bulk(options: &[String], verb: &str, entries: &impl Serialize) -> Result<(), String> {
    let dir = private_dir()?;
    let file = dir.join(format!("{verb}.json"));
    let text = serde_json::to_string(entries).map_err(|e| e.to_string())?;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    let done = written
        .map_err(|e| format!("{}: {e}", file.display()))
        .and_then(|()| {
            let path = file.to_string_lossy().to_string();
            let mut args = vec!["bulk", verb, path.as_str()];
            if verb == "delete" {
                args.push("--force");
            }
            wrangler(&args, options).map(|_| ())
        });
    let _ = std::fs::remove_dir_all(&dir);
    done
}

/// A new directory under the temporary directory with an unpredictable name, readable by
/// this user alone.
fn private_dir() -> Result<std::path::PathBuf, String> {
    let mut random = [0u8; 16];
    getrandom::getrandom(&mut random).map_err(|e| e.to_string())?;
    let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("portcullis-revoke-{name}"));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
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
        assert_eq!(
            args(&["--session", &hash]).unwrap().session.as_deref(),
            Some(hash.as_str())
        );
        let id = "ap_0123456789abcdef01234567";
        assert_eq!(
            args(&["--app-password", id])
                .unwrap()
                .app_password
                .as_deref(),
            Some(id)
        );
        // The forms themselves are SessionHash::parse's (tested with the store's keys).
        for bad in ["", "x", &("A".repeat(42) + ":")] {
            let e = args(&["--session", bad]).err().unwrap();
            assert!(e.starts_with("--session takes"), "{bad:?}: {e}");
        }
        for bad in ["ap_0123", "session:x", "ap_0123456789ABCDEF01234567"] {
            let e = args(&["--app-password", bad]).err().unwrap();
            assert!(e.starts_with("--app-password takes"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn bulk_entries_are_what_wrangler_reads() {
        let put = KvPut::of(&("revoked:h".to_string(), Entry::new("revoked", 1000))).unwrap();
        assert_eq!(
            serde_json::to_string(&[put]).unwrap(),
            r#"[{"key":"revoked:h","value":"revoked","expiration_ttl":1000}]"#
        );
        let short = KvPut::of(&("k".to_string(), Entry::new("v", 5))).unwrap();
        assert_eq!(short.expiration_ttl, 60, "KV's minimum");
    }

    #[test]
    fn an_unlisted_one_is_tombstoned_for_as_long_as_any_could_last() {
        let h = SessionHash::parse(&"h".repeat(43)).unwrap();
        let d = unlisted(Grant::Session(&h), keys::session_key(&h), 1_000);
        assert_eq!(d.expires, 1_000 + UNKNOWN_EXPIRY);
        assert!(d.record_exists && d.index_keys.is_empty());
    }

    #[test]
    fn bulk_files_go_to_a_private_directory() {
        let a = private_dir().unwrap();
        let b = private_dir().unwrap();
        assert_ne!(a, b, "unpredictable");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&a).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        std::fs::remove_dir_all(a).unwrap();
        std::fs::remove_dir_all(b).unwrap();
    }
}
