//! `portcullis service-token <name> [--json]` (`scripts/service-token`): a new service
//! token for machine clients. Only the secret's SHA-256 goes into the configuration.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use portcullis::crypto::SystemRandom;
use portcullis::service_token::NewToken;
use serde_json::json;

const USAGE: &str = "usage: scripts/service-token <name> [--json]   (name: letters, digits, - _ .; e.g. immich-mobile)";

pub fn run(args: impl Iterator<Item = String>) -> Result<bool, String> {
    let args = crate::simple_args(args, USAGE)?;
    let as_json = args.json;
    let name = args.value.ok_or(USAGE)?;
    let t = NewToken::generate(&name, &SystemRandom).map_err(|e| format!("{e}\n{USAGE}"))?;
    let secret = t.secret.expose();
    if as_json {
        let out = json!({
            "name": t.name, "client_id": t.client_id, "secret": secret,
            "secret_sha256": t.secret_sha256,
        });
        say!("{out}");
        return Ok(true);
    }
    let basic = STANDARD.encode(format!("{}:{secret}", t.client_id));
    say!(
        "# 1. Add this to wrangler.toml (only the secret's hash is stored):

[[vars.PORTCULLIS.service_tokens]]
name = \"{name}\"
client_id = \"{client_id}\"
secret_sha256 = \"{sha}\"

# 2. List it on each app it may open, e.g.
#      service_tokens = [\"{name}\"]
#    then deploy: npx wrangler deploy

# 3. Give the client these headers (the secret is shown only now):
#
#    Immich mobile app: Settings → Advanced → Custom proxy headers
#      Portcullis-Client-Id       {client_id}
#      Portcullis-Client-Secret   {secret}
#
#    Clients that only do HTTP Basic authentication (user name / password):
#      user name  {client_id}
#      password   {secret}
#    i.e. the header   Authorization: Basic {basic}",
        name = t.name,
        client_id = t.client_id,
        sha = t.secret_sha256,
    );
    Ok(true)
}
