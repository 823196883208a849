//! The secrets (`wrangler secret put`, or `.dev.vars` locally), validated into [`Secrets`].

use super::{ConfigErrors, Inputs, Problems};
use crate::assertion::AssertionKey;
use crate::model::Secrets;
use crate::secret::{AdminToken, ClientSecret, SigningKeys};

/// Each `SESSION_SECRET` key must carry at least 256 bits.
const MIN_SECRET_BYTES: usize = 32;
/// `ADMIN_TOKEN` guards revocation of every session: no short ones.
const MIN_ADMIN_TOKEN: usize = 32;

impl Secrets {
    /// The secrets of `inputs` (its `portcullis` value is not looked at).
    pub fn parse(inputs: &Inputs) -> Result<Secrets, ConfigErrors> {
        let mut p = Problems::default();
        let client_secret = match inputs.oidc_client_secret.as_deref() {
            None => None,
            Some("") => {
                p.add(
                    "OIDC_CLIENT_SECRET",
                    "is set but empty; delete it (`wrangler secret delete OIDC_CLIENT_SECRET`) for a public client",
                );
                None
            }
            Some(s) => Some(ClientSecret::new(s)),
        };
        let put = "`wrangler secret put SESSION_SECRET` (locally: a line in .dev.vars), e.g. the output of `openssl rand -base64 48`";
        let signing_keys = match inputs.session_secret.as_deref() {
            None => {
                p.add(
                    "SESSION_SECRET",
                    format!("is not set; set at least {MIN_SECRET_BYTES} random bytes with {put}"),
                );
                None
            }
            Some(text) => {
                let parts: Vec<&str> = text.split(',').map(str::trim).collect();
                let mut keys = Vec::new();
                for (i, part) in parts.iter().enumerate() {
                    if part.len() < MIN_SECRET_BYTES {
                        let which = if parts.len() == 1 {
                            "the secret".to_string()
                        } else {
                            format!("key {} of {}", i + 1, parts.len())
                        };
                        p.add(
                            "SESSION_SECRET",
                            format!(
                                "{which} is {} bytes; each key needs at least {MIN_SECRET_BYTES}; replace it with {put}",
                                part.len()
                            ),
                        );
                    } else {
                        keys.push(part.as_bytes().to_vec());
                    }
                }
                SigningKeys::new(keys)
            }
        };
        let assertion_key = inputs.assertion_key.as_deref().and_then(|text| {
            AssertionKey::from_jwk(text)
                .map_err(|e| p.add("ASSERTION_KEY", e))
                .ok()
        });
        let admin_token = match inputs.admin_token.as_deref().map(str::trim) {
            None => None,
            Some(token) if token.len() < MIN_ADMIN_TOKEN => {
                p.add(
                    "ADMIN_TOKEN",
                    format!(
                        "is {} characters; use at least {MIN_ADMIN_TOKEN} random ones (e.g. `openssl rand -base64 32`), or delete it to turn the admin API off",
                        token.len()
                    ),
                );
                None
            }
            Some(token) => Some(AdminToken::new(token)),
        };
        match signing_keys {
            Some(signing_keys) if p.0.is_empty() => Ok(Secrets {
                client_secret,
                signing_keys,
                assertion_key,
                admin_token,
            }),
            _ => Err(ConfigErrors(p.0)),
        }
    }
}
