//! Test support: a PostgreSQL database of its own for each test run.
//!
//! Tests read the server from `TEST_DATABASE_URL` and never touch the databases already
//! there: [`TempPostgres::create`] makes a uniquely named one and dropping the guard
//! drops it (with `FORCE`, so lingering connections do not keep it alive).

use palisade_migrate::Target;
use palisade_migrate::scratch::Scratch;

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
    url: String,
    _scratch: Scratch,
}

impl TempPostgres {
    /// Creates `palisade_test_<uuid>` on the `TEST_DATABASE_URL` server.
    pub async fn create() -> TempPostgres {
        let admin_url = test_database_url();
        let server = Target::from_url(&admin_url)
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL ({admin_url}): {e}"));
        let scratch = Scratch::create(&server, "palisade_test")
            .await
            .unwrap_or_else(|e| panic!("cannot create a test database on {admin_url}: {e}"));
        TempPostgres {
            url: with_database(&admin_url, &scratch.name()),
            _scratch: scratch,
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

/// A SQLite database in a temporary directory, with this build's migrations applied;
/// the directory lasts as long as the returned guard.
pub async fn migrated_sqlite() -> (crate::Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/test.db", dir.path().display());
    let db = crate::Db::connect(&crate::StoreSettings::new(url))
        .await
        .expect("db");
    migrate(&db).await;
    (db, dir)
}

/// Applies this build's migrations to `db`.
async fn migrate(db: &crate::Db) {
    crate::schema::migrator(db)
        .expect("migrator")
        .execute(
            &palisade_migrate::engine::Plan::Up { to: None },
            false,
            &palisade_migrate::Quiet,
        )
        .await
        .expect("migrate");
}

/// A database of its own on the `TEST_DATABASE_URL` server, with this build's migrations
/// applied; it is dropped with the returned guard.
pub async fn migrated_postgres() -> (crate::Db, TempPostgres) {
    let pg = TempPostgres::create().await;
    let db = crate::Db::connect(&crate::StoreSettings::new(pg.url()))
        .await
        .expect("connect to the test database");
    migrate(&db).await;
    (db, pg)
}

/// A server that speaks RESP but fails every command, as a Redis that is out of memory
/// or read-only does; returns its `redis://` URL. It serves until the runtime ends.
pub async fn failing_redis() -> String {
    failing_redis_counted().await.0
}

/// [`failing_redis`], and the number of commands it has failed so far.
pub async fn failing_redis_counted() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    // One error per command: each is an array, `*<n>` at a line start.
                    let commands = buf[..n]
                        .split(|b| *b == b'\n')
                        .filter(|l| l.first() == Some(&b'*'))
                        .count();
                    for _ in 0..commands {
                        counter.fetch_add(1, Ordering::SeqCst);
                        if sock.write_all(b"-ERR unavailable\r\n").await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("redis://{addr}"), count)
}

/// A loopback address nothing listens on (bound, then released), for a server that is
/// down and comes up later with [`tcp_proxy`].
///
/// The port is taken below the kernel's ephemeral range: a port the kernel handed out
/// could be handed out again, as the source port of some test's outgoing connection,
/// before the proxy binds it.
pub fn free_port() -> std::net::SocketAddr {
    use std::hash::{BuildHasher, RandomState};
    let hasher = RandomState::new();
    (0u64..1000)
        .map(|i| 20_000 + u16::try_from(hasher.hash_one(i) % 12_000).unwrap_or(0))
        .find_map(|port| {
            std::net::TcpListener::bind(("127.0.0.1", port))
                .and_then(|l| l.local_addr())
                .ok()
        })
        .expect("a free loopback port below the ephemeral range")
}

/// Forwards every connection to `addr` to the host and port of `target_url` (a
/// `redis://` or `postgres://` URL), until the returned task is aborted or dropped.
pub async fn tcp_proxy(addr: std::net::SocketAddr, target_url: &str) -> ProxyTask {
    let target = target_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.rsplit('@').next())
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the URL")
        .to_owned();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind the proxy's port");
    ProxyTask(tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    }))
}

/// A running [`tcp_proxy`]; stops accepting when dropped.
pub struct ProxyTask(tokio::task::JoinHandle<()>);

impl Drop for ProxyTask {
    fn drop(&mut self) {
        self.0.abort();
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
