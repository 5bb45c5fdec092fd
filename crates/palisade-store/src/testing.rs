//! Test support: a PostgreSQL database of its own for each test run.
//!
//! Tests read the server from `TEST_DATABASE_URL` and never touch the databases already
//! there: [`TempPostgres::create`] makes a uniquely named one and dropping the guard
//! drops it (with `FORCE`, so lingering connections do not keep it alive).

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The server every PostgreSQL test uses.
pub fn test_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "TEST_DATABASE_URL is not set: PostgreSQL tests need a server they may create \
             databases on, e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres"
        )
    })
}

/// A database that exists for as long as this guard does.
pub struct TempPostgres {
    admin_url: String,
    name: String,
    url: String,
}

impl TempPostgres {
    /// Creates `palisade_test_<uuid>` on the `TEST_DATABASE_URL` server.
    pub async fn create() -> TempPostgres {
        let admin_url = test_database_url();
        let name = format!("palisade_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL ({admin_url}): {e}"));
        // A database name is an identifier, which cannot be a bound parameter; this one
        // is generated here from hex digits only.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        TempPostgres {
            admin_url,
            name,
            url,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// `url` with its path (the database name) replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[authority_end..]
        .find('/')
        .map(|i| i + authority_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside or outside a runtime; a thread with its own runtime works in both.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(std::io::Error::other)?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            super::with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://h/db?sslmode=disable", "y"),
            "postgres://h/y?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "z"), "postgres://h/z");
    }
}
