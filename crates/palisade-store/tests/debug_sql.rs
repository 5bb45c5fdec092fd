//! `DEBUG_SQL` logs statement text, never bound values; off, it logs nothing.
//! (A test binary of its own: it installs the process-wide log subscriber.)

use std::io::Write;
use std::sync::{Arc, Mutex};

use palisade_store::sea_query::Query;
use palisade_store::{Db, StoreSettings};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().expect("buffer"))).into_owned()
    }
}

async fn insert_secret(debug_sql: bool, dir: &std::path::Path) {
    let url = format!("sqlite://{}/{}.db", dir.display(), debug_sql);
    let db = Db::connect(&StoreSettings {
        debug_sql,
        ..StoreSettings::new(url)
    })
    .await
    .expect("connect");
    db.execute_script("CREATE TABLE notes (body TEXT NOT NULL)")
        .await
        .expect("schema");
    let insert = Query::insert()
        .into_table("notes")
        .columns(["body"])
        .values_panic(["s3cr3t-value-123".into()])
        .to_owned();
    db.execute("notes", &insert).await.expect("insert");
    db.close().await;
}

#[tokio::test]
async fn statements_are_logged_only_when_asked_and_never_their_values() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_max_level(tracing::Level::TRACE)
        .init();
    let dir = tempfile::tempdir().expect("tempdir");

    insert_secret(true, dir.path()).await;
    let on = captured.take();
    assert!(
        on.contains("INSERT INTO"),
        "DEBUG_SQL=true logs the statement:\n{on}"
    );
    assert!(
        !on.contains("s3cr3t-value-123"),
        "a bound value was logged:\n{on}"
    );

    insert_secret(false, dir.path()).await;
    let off = captured.take();
    assert!(
        !off.contains("INSERT INTO"),
        "DEBUG_SQL=false logs no statement:\n{off}"
    );
}
