//! `portcullis assertion-key [ES256|EdDSA] [--json]` (`scripts/assertion-key`): a new
//! private key for `Portcullis-Assertion`, in the form the `ASSERTION_KEY` secret takes.

use portcullis::assertion::AssertionKey;
use portcullis::crypto::SystemRandom;

const USAGE: &str = "usage: scripts/assertion-key [ES256|EdDSA] [--json]";

pub fn run(args: impl Iterator<Item = String>) -> Result<bool, String> {
    let args = crate::simple_args(args, USAGE)?;
    let as_json = args.json;
    let alg = args.value.unwrap_or_else(|| "ES256".into());
    if !matches!(alg.as_str(), "ES256" | "EdDSA") {
        return Err(USAGE.into());
    }
    let key = portcullis::assertion::generate(&alg, &SystemRandom)?;
    if as_json {
        say!("{key}");
        return Ok(true);
    }
    let kid = AssertionKey::from_jwk(&key)?.kid().to_string();
    say!(
        "# A new {alg} key for Portcullis-Assertion (key ID {kid}).
# Store it as a secret (never in wrangler.toml):
#
#   npx wrangler secret put ASSERTION_KEY        and paste the line below
#
# or, for local development, put it in .dev.vars as   ASSERTION_KEY=<the line below>
#
# Apps verify assertions against https://<app host>/.portcullis/jwks.json
# (iss https://<app host>/.portcullis, aud <app host>).

{key}"
    );
    Ok(true)
}
