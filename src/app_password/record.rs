//! What KV keeps about an app password: the record (read on use) and the summary in its
//! index key's metadata (read by listings). Never the secret: only its SHA-256.

use serde::{Deserialize, Serialize};

use crate::identity::Identity;
use crate::store::keys::AppPasswordId;
#[cfg(test)]
use crate::store::MAX_METADATA;
use crate::store::{fit_metadata, halve_longest};

pub const RECORD_FORMAT: u8 = 1;
/// Labels are at most this many characters.
pub const MAX_LABEL: usize = 64;

/// The stored app password (JSON in KV).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPassword {
    pub v: u8,
    /// The client ID (`ap_…`).
    pub id: AppPasswordId,
    pub label: String,
    /// The app's host: it is valid there only.
    pub app: String,
    /// The person, as the issuer last described them (access rules are checked against it).
    pub identity: Identity,
    /// Unix seconds.
    pub created: u64,
    pub expires: u64,
    /// SHA-256 of the secret, base64url.
    pub secret_sha256: String,
    /// Recorded at most once a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<u64>,
    /// This app password's own refresh token, encrypted (only with `revalidate_every`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
    /// When the issuer last vouched for the person (creation or re-validation).
    pub validated: u64,
}

impl AppPassword {
    pub fn is_live(&self, now: u64) -> bool {
        self.v == RECORD_FORMAT && now < self.expires
    }
}

/// What listings show (the index key's metadata; KV allows 1024 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPasswordSummary {
    pub id: AppPasswordId,
    pub label: String,
    pub app: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub created: u64,
    pub expires: u64,
    #[serde(default)]
    pub last_used: Option<u64>,
}

impl AppPasswordSummary {
    /// As the account page's and the console's JSON show it (never a secret).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "label": self.label, "app": self.app, "created": self.created,
            "expires": self.expires, "last_used": self.last_used,
        })
    }

    pub fn of(record: &AppPassword) -> Self {
        AppPasswordSummary {
            id: record.id.clone(),
            label: record.label.clone(),
            app: record.app.clone(),
            sub: record.identity.sub.to_string(),
            email: record.identity.email.clone(),
            created: record.created,
            expires: record.expires,
            last_used: record.last_used,
        }
    }

    /// The metadata JSON, shortened to fit: the longest of `sub`, `email` and `label` is
    /// halved until it does (the ID, which revocation needs, is never shortened).
    pub fn to_metadata(&self) -> String {
        let mut shorter = self.clone();
        fit_metadata(&mut shorter, |s| {
            let mut email = s.email.take().unwrap_or_default();
            halve_longest([&mut s.sub, &mut email, &mut s.label]);
            s.email = Some(email).filter(|e| !e.is_empty());
        })
        .unwrap_or_else(|| format!("{{\"id\":\"{}\"}}", self.id))
    }
}

/// A label as a person typed it, or why it cannot be one: 1 to 64 characters, no control
/// characters, surrounding spaces dropped.
pub fn label(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Err("give the app password a label, e.g. \"Immich on Pixel 8\"");
    }
    if text.chars().count() > MAX_LABEL {
        return Err("the label is longer than 64 characters");
    }
    if text.chars().any(char::is_control) {
        return Err("the label contains control characters");
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(label("  Immich on Pixel 8 ").unwrap(), "Immich on Pixel 8");
        assert_eq!(label("Jürgen's iPhone").unwrap(), "Jürgen's iPhone");
        assert!(label("").is_err());
        assert!(label("   ").is_err());
        assert!(label("a\nb").is_err());
        assert!(label(&"x".repeat(65)).is_err());
        assert!(label(&"ü".repeat(64)).is_ok());
    }

    #[test]
    fn metadata_fits_and_keeps_the_id() {
        let s = AppPasswordSummary {
            id: AppPasswordId::parse("ap_0123456789abcdef01234567").unwrap(),
            label: "\u{1F600}".repeat(64),
            app: "photos.example.com".into(),
            sub: "s".repeat(900),
            email: Some("\"".repeat(400)),
            created: 1,
            expires: 2,
            last_used: None,
        };
        let json = s.to_metadata();
        assert!(json.len() <= MAX_METADATA, "{}", json.len());
        let back: AppPasswordSummary = serde_json::from_str(&json).unwrap();
        assert_eq!(back.id, s.id);
        assert_eq!(back.app, s.app);
    }
}
