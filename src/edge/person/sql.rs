//! A person's object's storage ([`PersonDb`]) on Durable Object SQLite.

use worker::{SqlStorage, SqlStorageValue};

use crate::people::record::{DbError, PersonDb, RefreshState, Renewed};

/// [`PersonDb`] on the object's SQLite.
pub struct Sql<'a>(pub &'a SqlStorage);

#[derive(serde::Deserialize)]
struct Number {
    n: f64,
}

#[derive(serde::Deserialize)]
struct RefreshRow {
    lease_until: f64,
    record: Option<String>,
    validated: Option<f64>,
}

fn failed(e: worker::Error) -> DbError {
    DbError(e.to_string())
}

impl Sql<'_> {
    fn exec(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<(), DbError> {
        self.0.exec(query, bindings).map(|_| ()).map_err(failed)
    }

    /// The first column (named `n`) of the first row, if any.
    fn number(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<Option<u64>, DbError> {
        let rows: Vec<Number> = self
            .0
            .exec(query, bindings)
            .and_then(|cursor| cursor.to_array())
            .map_err(failed)?;
        Ok(rows.first().map(|row| row.n as u64))
    }
}

/// Seconds as SQLite integers (times are far below 2^53).
fn int(seconds: u64) -> SqlStorageValue {
    SqlStorageValue::from(seconds as f64)
}

impl PersonDb for Sql<'_> {
    fn is_revoked(&self, grant: &str) -> Result<bool, DbError> {
        let query = "SELECT 1 AS n FROM revoked WHERE grant_name = ?";
        Ok(self.number(query, vec![grant.into()])?.is_some())
    }

    fn add_revoked(&self, grant: &str, expires: u64) -> Result<(), DbError> {
        self.exec(
            "INSERT INTO revoked (grant_name, expires) VALUES (?, ?) \
             ON CONFLICT (grant_name) DO UPDATE SET expires = MAX(expires, excluded.expires)",
            vec![grant.into(), int(expires)],
        )
    }

    fn everything_before(&self) -> Result<Option<u64>, DbError> {
        self.number(
            "SELECT at_or_before AS n FROM everything WHERE id = 0",
            vec![],
        )
    }

    fn set_everything_before(&self, at: u64) -> Result<(), DbError> {
        self.exec(
            "INSERT INTO everything (id, at_or_before) VALUES (0, ?) \
             ON CONFLICT (id) DO UPDATE SET at_or_before = excluded.at_or_before",
            vec![int(at)],
        )
    }

    fn forget_expired(&self, now: u64) -> Result<(), DbError> {
        self.exec("DELETE FROM revoked WHERE expires <= ?", vec![int(now)])?;
        self.exec("DELETE FROM refreshing WHERE expires <= ?", vec![int(now)])
    }

    fn refresh_state(&self, grant: &str) -> Result<Option<RefreshState>, DbError> {
        let rows: Vec<RefreshRow> = self
            .0
            .exec(
                "SELECT lease_until, record, validated FROM refreshing WHERE grant_name = ?",
                vec![grant.into()],
            )
            .and_then(|cursor| cursor.to_array())
            .map_err(failed)?;
        Ok(rows.into_iter().next().map(|row| RefreshState {
            lease_until: row.lease_until as u64,
            record: row.record.zip(row.validated.map(|v| v as u64)),
        }))
    }

    fn set_lease(&self, grant: &str, until: u64, expires: u64) -> Result<(), DbError> {
        self.exec(
            "INSERT INTO refreshing (grant_name, lease_until, expires) VALUES (?, ?, ?) \
             ON CONFLICT (grant_name) DO UPDATE SET lease_until = excluded.lease_until, \
             expires = MAX(expires, excluded.expires)",
            vec![grant.into(), int(until), int(expires)],
        )
    }

    fn set_current(&self, grant: &str, renewed: Renewed<'_>) -> Result<(), DbError> {
        self.exec(
            "INSERT INTO refreshing (grant_name, lease_until, record, validated, expires) VALUES (?, 0, ?, ?, ?) \
             ON CONFLICT (grant_name) DO UPDATE SET lease_until = 0, record = excluded.record, \
             validated = excluded.validated, expires = excluded.expires",
            vec![
                grant.into(),
                renewed.record.into(),
                int(renewed.validated),
                int(renewed.expires),
            ],
        )
    }

    fn forget_refresh(&self, grant: &str) -> Result<(), DbError> {
        self.exec(
            "DELETE FROM refreshing WHERE grant_name = ?",
            vec![grant.into()],
        )
    }
}
