//! One JSON object per log line:
//!
//! `{"timestamp":"2026-11-27T12:59:06.986344Z","level":"INFO","message":"…",<event fields>,"target":"…","request_id":"…",<span fields>}`
//!
//! `request_id` is on every line logged while a request is served (see
//! `palisade_http::layers::request_id::scope`); fields of enclosing spans, if any,
//! sit at the top level too, so a log query needs no nesting. Strings are escaped as
//! JSON requires, so a newline or a quote in a value can never start a forged line.
//!
//! The line is built in a buffer of its own with plain string pushes and handed to
//! the subscriber's writer once: tracing-subscriber's JSON format collects each event
//! into a `serde_json` map first, and the access log writes a line per request
//! (docs/ARCHITECTURE.md has the numbers).

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use palisade_http::layers::request_id;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format.
pub struct JsonLines;

/// The field format of spans: each field as `,"name":value`.
pub struct JsonFields;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with(|line| {
            // A line logged while formatting one (a Debug impl that logs) gets a buffer
            // of its own.
            let mut fresh = String::new();
            let mut borrowed = line.try_borrow_mut();
            let line = match borrowed.as_deref_mut() {
                Ok(l) => l,
                Err(_) => &mut fresh,
            };
            line.clear();
            let meta = event.metadata();
            line.push_str("{\"timestamp\":\"");
            push_timestamp(line, SystemTime::now());
            line.push_str("\",\"level\":\"");
            line.push_str(meta.level().as_str());
            line.push('"');
            event.record(&mut FieldWriter(line));
            line.push_str(",\"target\":");
            push_str(line, meta.target());
            if let Some(id) = request_id::current() {
                line.push_str(",\"request_id\":");
                push_str(line, id.as_str());
            }
            if let Some(scope) = ctx.event_scope() {
                for span in scope.from_root() {
                    if let Some(f) = span.extensions().get::<FormattedFields<N>>() {
                        line.push_str(&f.fields);
                    }
                }
            }
            line.push_str("}\n");
            w.write_str(line)
        })
    }
}

impl<'w> FormatFields<'w> for JsonFields {
    fn format_fields<R: RecordFields>(&self, mut w: Writer<'w>, fields: R) -> fmt::Result {
        let mut fragment = String::new();
        fields.record(&mut FieldWriter(&mut fragment));
        w.write_str(&fragment)
    }

    /// Fields recorded later on a span are appended: every fragment starts with its comma.
    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        self.format_fields(current.as_writer(), fields)
    }
}

/// Appends each visited field as `,"name":value`.
struct FieldWriter<'a>(&'a mut String);

impl FieldWriter<'_> {
    fn key(&mut self, field: &Field) -> &mut String {
        // Field names are Rust identifiers (or `message`): nothing to escape.
        self.0.push_str(",\"");
        self.0.push_str(field.name());
        self.0.push_str("\":");
        self.0
    }

    /// A value written with `Display`/`Debug`, as a JSON string.
    fn formatted(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let out = self.key(field);
        out.push('"');
        // Writing to a String cannot fail.
        let _ = Escaped(out).write_fmt(value);
        out.push('"');
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        push_str(self.key(field), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field)
            .push_str(if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those are written as strings.
        if value.is_finite() {
            self.key(field)
                .push_str(zmij::Buffer::new().format_finite(value));
        } else {
            self.formatted(field, format_args!("{value}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.formatted(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.formatted(field, format_args!("{value:?}"));
    }
}

/// A JSON string literal.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

/// The bytes a JSON string must not hold as they are: control characters, `"`, `\`
/// (and DEL, which terminals act on).
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t
};

/// Appends `s` escaped for the inside of a JSON string literal.
fn push_escaped(out: &mut String, s: &str) {
    // Nearly every value needs no escape.
    if !s.bytes().any(|b| NEEDS_ESCAPE[usize::from(b)]) {
        out.push_str(s);
        return;
    }
    let mut clean = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if !NEEDS_ESCAPE[usize::from(b)] {
            continue;
        }
        // `i` is at an ASCII byte, so on a character boundary.
        out.push_str(&s[clean..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        clean = i + 1;
    }
    out.push_str(&s[clean..]);
}

/// A `fmt::Write` that escapes what it is given into a String.
struct Escaped<'a>(&'a mut String);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

/// RFC 3339 UTC with microseconds. The date and time of day are formatted once per
/// second per thread; only the fraction changes between the lines of a busy second.
fn push_timestamp(out: &mut String, now: SystemTime) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let t = i64::try_from(secs)
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            cached.1.clear();
            let _ = write!(
                cached.1,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            cached.0 = secs;
        }
        out.push_str(&cached.1);
        let _ = write!(out, ".{:06}Z", since.subsec_micros());
    });
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::Value;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("capture").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    /// The lines `log` produces, each parsed as JSON (which fails the test if it is not).
    fn lines(log: impl FnOnce()) -> Vec<Value> {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .fmt_fields(JsonFields)
            .with_writer(capture.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(capture.0.lock().expect("capture").clone()).expect("utf-8");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn every_field_type_is_valid_json() {
        let err = io::Error::other("disk \"full\"");
        let got = lines(|| {
            tracing::info!(
                s = "text",
                n = 42u64,
                i = -7i64,
                f = 1.5f64,
                nan = f64::NAN,
                b = true,
                d = ?Some(3),
                e = &err as &dyn std::error::Error,
                "hello {}", "world"
            );
        });
        let line = &got[0];
        assert_eq!(line["message"], "hello world");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["s"], "text");
        assert_eq!(line["n"], 42);
        assert_eq!(line["i"], -7);
        assert_eq!(line["f"], 1.5);
        assert_eq!(line["nan"], "NaN");
        assert_eq!(line["b"], true);
        assert_eq!(line["d"], "Some(3)");
        assert_eq!(line["e"], "disk \"full\"");
        assert!(
            line["target"]
                .as_str()
                .is_some_and(|t| t.contains("format"))
        );
    }

    #[test]
    fn control_characters_cannot_forge_a_line() {
        let forged = "x\"}\n{\"level\":\"ERROR\",\"message\":\"forged\u{7}\\";
        let got = lines(|| tracing::warn!(user_agent = forged, "seen"));
        assert_eq!(got.len(), 1, "one line, not two");
        assert_eq!(got[0]["user_agent"], forged);
    }

    #[test]
    fn span_fields_are_on_every_line_inside_the_span() {
        let got = lines(|| {
            let outer = tracing::info_span!("request", request_id = "r-1");
            let _o = outer.enter();
            let inner = tracing::info_span!("step", step = tracing::field::Empty);
            inner.record("step", 3u64);
            let _i = inner.enter();
            tracing::info!("inside");
        });
        assert_eq!(got[0]["request_id"], "r-1");
        assert_eq!(got[0]["step"], 3, "a field recorded after creation");
    }

    #[test]
    fn lines_logged_while_a_request_is_served_carry_its_id() {
        let mut req = http::Request::new(axum::body::Body::empty());
        req.headers_mut()
            .insert("x-request-id", http::HeaderValue::from_static("req-42"));
        let id = request_id::assign(&mut req);
        let got = lines(|| {
            request_id::scope(&id, || tracing::info!("inside"));
            tracing::info!("outside");
        });
        assert_eq!(got[0]["request_id"], "req-42");
        assert!(got[1].get("request_id").is_none());
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut s = String::new();
        let t = UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456);
        push_timestamp(&mut s, t);
        assert_eq!(s, "2026-11-18T11:06:40.123456Z");
        s.clear();
        push_timestamp(&mut s, t + Duration::from_secs(1));
        assert_eq!(
            s, "2026-11-18T11:06:41.123456Z",
            "the cached second moves on"
        );
    }
}
