//! `portcullis check-config` (`scripts/check-config`): validates a `wrangler.toml` the way
//! the worker will, before deploying, and says what it configures.

use portcullis::assertion::AssertionKey;
use portcullis::config::{binding_problems, format_duration, ConfigError, ConfigErrors, Inputs};
use portcullis::model::{Config, Settings, UserClaim};

const USAGE: &str =
    "usage: scripts/check-config [wrangler.toml] [--env NAME] [--dev-vars FILE] [--json]";

struct Args {
    path: String,
    env: Option<String>,
    dev_vars: Option<String>,
    /// Print the validated PORTCULLIS value as JSON instead of the summary.
    json: bool,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        path: "wrangler.toml".into(),
        env: None,
        dev_vars: None,
        json: false,
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--env" => args.env = Some(it.next().ok_or(USAGE)?),
            "--dev-vars" => args.dev_vars = Some(it.next().ok_or(USAGE)?),
            "--json" => args.json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n{USAGE}"))
            }
            other => args.path = other.into(),
        }
    }
    Ok(args)
}

/// `KEY=value` lines, as wrangler reads `.dev.vars`.
fn dev_vars(path: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect())
}

/// The secrets known here: from `--dev-vars`, then the environment.
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn read(dev_vars_path: Option<&str>) -> Result<Self, String> {
        let mut secrets: Vec<(String, String)> = match dev_vars_path {
            Some(path) => dev_vars(path)?,
            None => Vec::new(),
        };
        for name in [
            "SESSION_SECRET",
            "OIDC_CLIENT_SECRET",
            "ASSERTION_KEY",
            "ADMIN_TOKEN",
        ] {
            if let Ok(value) = std::env::var(name) {
                secrets.retain(|(k, _)| k != name);
                secrets.push((name.into(), value));
            }
        }
        Ok(Secrets(secrets))
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// Whether the secrets were given at all (`SESSION_SECRET` is required).
    fn known(&self) -> bool {
        self.get("SESSION_SECRET").is_some()
    }
}

/// What `wrangler.toml` declares, in the file or its `[env.NAME]` section.
struct Declared {
    /// The `[vars.PORTCULLIS]` table, as JSON.
    portcullis: Option<serde_json::Value>,
    /// A `SESSIONS` KV binding.
    has_kv: bool,
    /// The `PEOPLE` Durable Object binding: `None` when absent, else the problems with it.
    people: Option<Vec<ConfigError>>,
}

/// The `PEOPLE` binding's problems (`Some(vec![])`: bound as it should be), or `None`.
fn people_binding(doc: &toml::Table, scope: &toml::Table) -> Option<Vec<ConfigError>> {
    let bindings = scope
        .get("durable_objects")
        .and_then(|d| d.get("bindings"))
        .and_then(toml::Value::as_array)?;
    let binding = bindings
        .iter()
        .find(|b| b.get("name").and_then(toml::Value::as_str) == Some("PEOPLE"))?;
    let problem = |problem: &str| ConfigError {
        key: "PEOPLE".into(),
        problem: problem.into(),
    };
    let mut problems = Vec::new();
    if binding.get("class_name").and_then(toml::Value::as_str) != Some("Person") {
        problems.push(problem("the binding must name class_name = \"Person\""));
    }
    // Migrations are top-level in wrangler.toml, whatever the environment.
    let migrated = doc
        .get("migrations")
        .and_then(toml::Value::as_array)
        .is_some_and(|steps| {
            steps.iter().any(|step| {
                step.get("new_sqlite_classes")
                    .and_then(toml::Value::as_array)
                    .is_some_and(|c| c.iter().any(|c| c.as_str() == Some("Person")))
            })
        });
    if !migrated {
        problems.push(problem("no migration declares Person; add [[migrations]] with tag = \"people-v1\" and new_sqlite_classes = [\"Person\"] (SQLite-backed: the Free plan's kind)"));
    }
    Some(problems)
}

fn read_config(args: &Args) -> Result<Declared, String> {
    let text = std::fs::read_to_string(&args.path).map_err(|e| format!("{}: {e}", args.path))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: not valid TOML: {e}", args.path))?;
    let scope: &toml::Table = match &args.env {
        None => &doc,
        Some(env) => doc
            .get("env")
            .and_then(|e| e.get(env.as_str()))
            .and_then(toml::Value::as_table)
            .ok_or_else(|| format!("{}: no [env.{env}] section", args.path))?,
    };
    let portcullis = scope
        .get("vars")
        .and_then(|v| v.get("PORTCULLIS"))
        .map(|v| serde_json::to_value(v).map_err(|e| e.to_string()))
        .transpose()?;
    let has_kv = scope
        .get("kv_namespaces")
        .and_then(toml::Value::as_array)
        .is_some_and(|list| {
            list.iter()
                .any(|ns| ns.get("binding").and_then(toml::Value::as_str) == Some("SESSIONS"))
        });
    Ok(Declared {
        portcullis,
        has_kv,
        people: people_binding(&doc, scope),
    })
}

/// True when the configuration is valid.
pub fn run(args: impl Iterator<Item = String>) -> Result<bool, String> {
    let args = parse_args(args)?;
    let Declared {
        portcullis,
        has_kv,
        people,
    } = read_config(&args)?;
    let secrets = Secrets::read(args.dev_vars.as_deref())?;
    let mut problems: Vec<ConfigError> = people.clone().unwrap_or_default();
    if !has_kv {
        problems.push(ConfigError {
            key: "SESSIONS".into(),
            problem: "KV binding is missing; add [[kv_namespaces]] with binding = \"SESSIONS\" (create one with `npx wrangler kv namespace create SESSIONS`)".into(),
        });
    }
    let settings = match Settings::parse(portcullis.as_ref()) {
        Ok(settings) => {
            problems.extend(binding_problems(&settings, people.is_some()));
            Some(settings)
        }
        Err(ConfigErrors(e)) => {
            problems.extend(e);
            None
        }
    };
    if secrets.known() {
        let inputs = Inputs {
            portcullis: portcullis.clone(),
            oidc_client_secret: secrets.get("OIDC_CLIENT_SECRET"),
            session_secret: secrets.get("SESSION_SECRET"),
            assertion_key: secrets.get("ASSERTION_KEY"),
            admin_token: secrets.get("ADMIN_TOKEN"),
        };
        if let Err(ConfigErrors(e)) = Config::from_inputs(&inputs) {
            // Settings problems are already listed; add only the secrets' own.
            problems.extend(e.into_iter().filter(|p| !p.key.starts_with("PORTCULLIS")));
        }
    }
    let assertion_key = secrets
        .get("ASSERTION_KEY")
        .map(|k| AssertionKey::from_jwk(&k));
    if let Some(Ok(key)) = &assertion_key {
        problems.extend(assertion_key_problem(key));
    }
    if !problems.is_empty() {
        say!("Portcullis is misconfigured ({}):", args.path);
        for p in &problems {
            say!("  {p}");
        }
        return Ok(false);
    }
    let Some(s) = settings else { return Ok(false) };
    if args.json {
        say!("{}", portcullis.unwrap_or_default());
        return Ok(true);
    }
    say!("{}: configuration is valid.", args.path);
    print_settings(&s);
    print_revocation(&s, people.is_some());
    say!("  apps:");
    for app in &s.apps {
        print_app(app, &s.client_id, s.auth_host.is_some());
    }
    print_app_passwords(&s);
    print_console(&s);
    print_registration(&s);
    print_secrets(&secrets, assertion_key);
    Ok(true)
}

/// The Worker finds a private part that does not belong to the public one only when it
/// signs; here it is found before deploying.
fn assertion_key_problem(key: &AssertionKey) -> Option<ConfigError> {
    let e = key.self_test().err()?;
    let fix = "generate a new key with `scripts/assertion-key`";
    let problem = if e.0.contains(fix) {
        e.0
    } else {
        format!("cannot sign ({}); {fix}", e.0)
    };
    Some(ConfigError {
        key: "ASSERTION_KEY".into(),
        problem,
    })
}

/// How quickly a revocation holds everywhere, and what it costs, in the mode declared.
fn print_revocation(s: &Settings, people: bool) {
    if people {
        say!(
            "  revocation        every location within revocation_check ({}): PEOPLE, a Durable Object per person",
            format_duration(s.revocation_check)
        );
        say!(
            "                    cost: 1 object request per credential in use, per isolate, per revocation_check; one person browsing all day from one isolate: about {} a day (Free plan: 100,000)",
            86_400 / s.revocation_check.max(1)
        );
    } else {
        say!(
            "  revocation        elsewhere up to session_cache + KV propagation (about {}); bind PEOPLE for {} (scripts/setup --instant-revocation)",
            format_duration(s.session_cache + 60),
            format_duration(s.revocation_check)
        );
    }
    let passed: Vec<&str> = s
        .apps
        .iter()
        .filter(|a| !a.relays_websockets(people))
        .map(|a| a.host.as_str())
        .collect();
    if passed.len() < s.apps.len() {
        say!("                    WebSockets relayed through the person's object (websockets = \"relay\"): closed with 1008 within revocation_check of a revocation; each open socket keeps its object running (Free plan: about 28 object-hours a day)");
    }
    if !passed.is_empty() {
        say!(
            "                    WebSockets passed to the origin ({}): an open socket is not closed by a revocation; it lasts until it ends",
            passed.join(", ")
        );
    }
    match (s.revalidate_every.is_some(), people) {
        (true, true) => say!("                    re-validation: one refresh at a time per session or app password, wherever it runs (the person's object holds the current refresh token)"),
        (true, false) => say!("                    re-validation runs per location: against an issuer that rotates refresh tokens (Pocket ID, authentik), a session used from two locations at once can be ended by the issuer's reuse detection"),
        _ => {}
    }
}

/// The top-level settings.
fn print_settings(s: &Settings) {
    say!("  issuer            {}", s.issuer);
    say!("  client_id         {}", s.client_id);
    if !s.id_token_audiences.is_empty() {
        say!(
            "  ID tokens         may also name {}",
            s.id_token_audiences.join(", ")
        );
    }
    if s.scopes.is_configured() {
        say!("  scopes            {}", s.scopes.all().join(" "));
    } else {
        say!(
            "  scopes            {} (the defaults: each only if the issuer lists it)",
            s.scopes.all().join(" ")
        );
    }
    say!(
        "  session_lifetime  {}",
        format_duration(s.session_lifetime)
    );
    say!(
        "  session_cache     {} (revocation elsewhere takes up to this long, plus KV propagation)",
        format_duration(s.session_cache)
    );
    match s.revalidate_every {
        Some(every) => say!(
            "  revalidate_every  {} (refresh tokens; offline_access requested when the issuer lists it; if the issuer gives no refresh token, sessions last until they expire, and the log says so once)",
            format_duration(every)
        ),
        None => say!("  revalidate_every  off: sessions last until they expire or are revoked"),
    }
    match &s.cookie_domain {
        Some(d) => say!("  session cookie    shared across *.{d}"),
        None => say!("  session cookie    per host"),
    }
}

/// One app: where it goes, who may enter, which clients it takes.
fn print_app(app: &portcullis::model::App, client_id: &str, auth_host: bool) {
    let origin = app
        .origin
        .as_ref()
        .map_or("the zone's origin (same URL)", |o| o.as_str());
    say!("    {} -> {origin}", app.host);
    let a = &app.allow;
    if a.is_open() {
        say!("      access          every user the issuer lets in (no allow_* rule)");
    } else {
        let mut rules = Vec::new();
        if !a.groups.is_empty() {
            rules.push(format!("groups {}", a.groups.join(", ")));
        }
        if !a.emails.is_empty() {
            rules.push(format!("verified emails {}", a.emails.join(", ")));
        }
        if !a.email_domains.is_empty() {
            rules.push(format!(
                "verified email domains {}",
                a.email_domains.join(", ")
            ));
        }
        say!("      access          {}", rules.join("; "));
    }
    let user = match app.user_claim {
            UserClaim::Email => "email (the verified email; sub when there is none)",
            UserClaim::Sub => "sub (the issuer's stable ID for the person)",
            UserClaim::PreferredUsername => "preferred_username — WARNING: people can edit it at most issuers (Pocket ID included), so someone could choose which account this app maps them to",
        };
    say!("      user header     {user}");
    let list = |patterns: &[portcullis::path::PathPattern]| {
        patterns
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !app.public_paths.is_empty() {
        say!(
            "      public paths    {} (no login, no identity headers)",
            list(&app.public_paths)
        );
    }
    if !app.api_paths.is_empty() {
        say!(
            "      API paths       {} (401 instead of a login redirect)",
            list(&app.api_paths)
        );
    }
    if !app.service_tokens.is_empty() {
        say!("      service tokens  {}", app.service_tokens.join(", "));
    }
    if app.app_passwords {
        let paths = if app.app_password_paths.is_empty() {
            "the whole app".to_string()
        } else {
            list(&app.app_password_paths)
        };
        say!("      app passwords   accepted on {paths}");
        if !auth_host {
            say!("                      cannot be created: there is no auth_host (existing ones keep working); set auth_host (with cookie_domain)");
        }
    }
    if app.accept_bearer {
        let mut audiences = vec![client_id.to_string()];
        audiences.extend(app.bearer_audiences.iter().cloned());
        say!(
            "      bearer tokens   accepted from the issuer (aud: {})",
            audiences.join(", ")
        );
    }
}

/// The app-password limits, when any app takes them.
fn print_app_passwords(s: &Settings) {
    if s.apps.iter().any(|a| a.app_passwords) {
        say!(
            "  app passwords     at most {} per person, each for at most {}{}",
            s.max_app_passwords,
            format_duration(s.app_password_lifetime),
            if s.revalidate_every.is_some() {
                "; each re-validated at the issuer with its own grant"
            } else {
                "; not re-validated (without revalidate_every they last until they expire or are revoked)"
            }
        );
        match &s.auth_host {
            Some(auth) => say!("                    created on {auth} alone, whose origin no app's script shares"),
            None => say!("                    none can be created without auth_host (existing ones keep working): the account page would share each app's origin, where a script of that app (or an XSS in it) could create one; set auth_host (with cookie_domain)"),
        }
    } else {
        say!("  app passwords     off (no app has app_passwords = true)");
    }
}

/// Who may open the admin console, and where.
fn print_console(s: &Settings) {
    match (&s.auth_host, s.admin_groups.is_empty()) {
        (Some(auth), false) => say!(
            "  admin console     https://{auth}/.portcullis/admin, for members of {}; opening it needs a sign-in from the last 10 minutes",
            s.admin_groups.join(", ")
        ),
        _ => say!(
            "  admin console     off (set admin_groups, with auth_host, to have one); the admin API with ADMIN_TOKEN is unchanged"
        ),
    }
}

/// What to register at the issuer.
fn print_registration(s: &Settings) {
    let callback_hosts: Vec<&str> = match &s.auth_host {
        Some(h) => vec![h.as_str()],
        None => s.apps.iter().map(|a| a.host.as_str()).collect(),
    };
    say!("  register at the issuer:");
    for h in &callback_hosts {
        say!("    callback URL            https://{h}/.portcullis/callback");
    }
    for h in &callback_hosts {
        say!("    post-logout redirect    https://{h}/.portcullis/signed-out");
    }
}

/// The assertion key, the admin API and the secrets.
fn print_secrets(secrets: &Secrets, assertion_key: Option<Result<AssertionKey, String>>) {
    let secrets_known = secrets.known();
    let secret = |name: &str| secrets.get(name);
    match assertion_key {
        Some(Ok(key)) => say!(
            "  assertion         Portcullis-Assertion signed with {} (kid {}); keys at /.portcullis/jwks.json",
            key.alg(),
            key.kid()
        ),
        Some(Err(_)) => {}
        None if secrets_known => say!(
            "  assertion         none: no ASSERTION_KEY, so no Portcullis-Assertion header (create one with scripts/assertion-key)"
        ),
        None => say!(
            "  assertion         ASSERTION_KEY not checked here; without it no Portcullis-Assertion header is sent"
        ),
    }
    match secret("ADMIN_TOKEN") {
        Some(_) => say!("  admin API         on (ADMIN_TOKEN set)"),
        None if secrets_known => say!("  admin API         off (no ADMIN_TOKEN)"),
        None => say!("  admin API         on only if ADMIN_TOKEN is set (not checked here)"),
    }
    if secrets_known {
        match secret("OIDC_CLIENT_SECRET") {
            Some(_) => say!("  secrets           SESSION_SECRET and OIDC_CLIENT_SECRET checked (confidential client)"),
            None => say!("  secrets           SESSION_SECRET checked; no OIDC_CLIENT_SECRET: public client, PKCE only"),
        }
    } else {
        say!("  secrets           not checked here: set them with `npx wrangler secret put SESSION_SECRET` (and OIDC_CLIENT_SECRET for a confidential client), or pass --dev-vars FILE");
    }
}
