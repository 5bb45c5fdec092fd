//! Full-text search with hostile input: whatever `q` holds is searched for as words,
//! never read as the full-text query language or SQL, and never answers 5xx.

use reqwest::StatusCode;
use serde_json::json;

use super::{created, draft, get, ids, member, payments, with_role};
use crate::backends::Env;

/// What an attacker or a careless client puts in `q`, and whether it is too long
/// (422) or else an answer (200).
fn hostile() -> Vec<(String, bool)> {
    let short = [
        "\"",
        "\"\"",
        "\"acme",
        "acme\"",
        "*",
        "acme*",
        "*acme",
        "OR",
        "acme OR bolts",
        "NEAR(acme bolts)",
        "NEAR(",
        "-",
        "-acme",
        "acme -bolts",
        ")",
        "(",
        "((acme))",
        "acme AND",
        "NOT acme",
        "^acme",
        "title:acme",
        "{title}: acme",
        "acme:*",
        "!acme",
        "acme & bolts",
        "acme | bolts",
        "acme <-> bolts",
        "'",
        "''",
        "'; DROP TABLE x; --",
        "'; DROP TABLE contracts; --",
        "1' OR '1'='1",
        "\\",
        "%",
        "_",
        "%00",
        "\u{0}",
        "acme\u{0}bolts",
        "\u{7f}",
        "\t\n\r",
        " ",
        "\u{feff}",
        "\u{202e}acme",
        "ｐａｌｉｓａｄｅ",
        "Ä Ö Ü ß",
        "日本語",
        "Rotterdam!!!",
    ];
    let mut out: Vec<(String, bool)> = short.iter().map(|s| ((*s).to_owned(), false)).collect();
    out.push(("🦀".repeat(200), false));
    out.push(("x".repeat(200), false));
    out.push(("acme ".repeat(40), false));
    out.push(("x".repeat(201), true));
    out.push(("x".repeat(10_000), true));
    out.push(("🦀".repeat(201), true));
    out.push((String::new(), true));
    out
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Each hostile string, on `GET /search` and `GET /contracts?q=`: 200 or 422, and the
/// contracts are all still there afterwards.
async fn hostile_search_text_is_only_ever_words(e: Env) {
    let a = member(&e, "a@example.com").await;
    let mut c = draft("Acme bolts");
    c["description"] = json!("Nuts and bolts from Rotterdam");
    let id = created(&e, &a, c).await["id"].as_str().unwrap().to_owned();
    let contract = payments::active(&e, &a, 10_000).await;
    let mut p = payments::payment(&contract, 100, "pm_card_visa");
    p["description"] = json!("Nuts and bolts deposit");
    payments::pay(&e, &a, "hostile-1", p)
        .await
        .expect(StatusCode::CREATED);
    // Two callers, so the rate limit per user is not what answers.
    let manager = with_role(&e, "manager@example.com", "manager").await;
    for (q, too_long) in hostile() {
        for (who, path) in [
            (&a, format!("/api/v1/search?q={}", url_encode(&q))),
            (&manager, format!("/api/v1/contracts?q={}", url_encode(&q))),
        ] {
            let r = get(&e, who, &path).await;
            let want = if too_long {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            assert_eq!(r.status, want, "{path}: {}", r.body);
            if too_long {
                assert_eq!(r.body["errors"][0]["field"], "q", "{}", r.body);
            }
        }
    }
    // Operators are words: `acme OR zzz` needs both words, so finds nothing.
    let r = get(&e, &a, "/api/v1/search?q=acme%20OR%20zzz")
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["items"], json!([]));
    let r = get(
        &e,
        &a,
        "/api/v1/search?q=%22acme%22%20-bolts&types=contracts",
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        r.body["items"][0]["id"],
        id.as_str(),
        "`-bolts` is the word bolts, not its negation"
    );
    // The tables are intact after all of it.
    let r = get(&e, &a, "/api/v1/contracts")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&r.body).len(), 2);
    assert!(ids(&r.body).contains(&id));
    let r = get(
        &e,
        &a,
        "/api/v1/search?q=bolts%22%20OR%20%22x&types=payments",
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(r.body["items"], json!([]), "`OR` and `x` are words too");
    let r = get(&e, &a, "/api/v1/search?q=%22bolts%22&types=payments")
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["items"][0]["title"], "Nuts and bolts deposit");
}

/// Results are ranked (a title match above a description match), carry a plain-text
/// snippet, and stay within what the caller sees.
async fn search_ranks_and_scopes(e: Env) {
    let a = member(&e, "a@example.com").await;
    let b = member(&e, "b@example.com").await;
    let mut in_title = draft("Turbine maintenance");
    in_title["description"] = json!("Yearly service.");
    let mut in_text = draft("Yearly service");
    in_text["description"] = json!("Covers the turbine hall lights and <b>nothing</b> else.");
    let title_id = created(&e, &a, in_title).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let text_id = created(&e, &a, in_text).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    created(&e, &b, draft("Turbine for B")).await;

    let r = get(&e, &a, "/api/v1/search?q=turbine")
        .await
        .expect(StatusCode::OK);
    let items = r.body["items"].as_array().unwrap();
    let got: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(got, [title_id.as_str(), text_id.as_str()], "{}", r.body);
    assert!(items[0]["score"].as_f64().unwrap() > items[1]["score"].as_f64().unwrap());
    assert_eq!(items[0]["type"], "contracts");
    assert_eq!(items[0]["title"], "Turbine maintenance");
    let snippet = items[1]["snippet"].as_str().unwrap();
    assert!(snippet.contains("turbine"), "{snippet}");
    let r = get(&e, &a, "/api/v1/search?q=turbine&types=contracts&limit=1")
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = get(&e, &a, "/api/v1/search?q=turbine&types=invoices")
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "types");
    get(&e, &a, "/api/v1/search")
        .await
        .expect(StatusCode::BAD_REQUEST);

    // Payments are searched by their description, among the payer's own (everyone's
    // with `records:all`), and merged with the contracts by score.
    let mut paid = Vec::new();
    for (who, key, text) in [
        (&a, "s-a", "Turbine blade deposit"),
        (&b, "s-b", "Turbine for B, deposit"),
    ] {
        let contract = payments::active(&e, who, 100_000).await;
        let mut body = payments::payment(&contract, 500, "pm_card_visa");
        body["description"] = json!(text);
        let r = payments::pay(&e, who, key, body)
            .await
            .expect(StatusCode::CREATED);
        paid.push(r.text("id"));
    }
    let r = get(&e, &a, "/api/v1/search?q=turbine&types=payments")
        .await
        .expect(StatusCode::OK);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", r.body);
    assert_eq!(
        (&items[0]["type"], &items[0]["id"], &items[0]["title"]),
        (
            &json!("payments"),
            &json!(paid[0]),
            &json!("Turbine blade deposit")
        )
    );
    assert!(
        items[0]["snippet"].as_str().unwrap().contains("Turbine"),
        "{}",
        r.body
    );
    let r = get(&e, &a, "/api/v1/search?q=turbine")
        .await
        .expect(StatusCode::OK);
    let mut kinds: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["contracts", "contracts", "payments"], "{}", r.body);
    let manager = with_role(&e, "manager@example.com", "manager").await;
    let r = get(&e, &manager, "/api/v1/search?q=deposit&types=payments")
        .await
        .expect(StatusCode::OK);
    let mut found: Vec<String> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    found.sort();
    paid.sort();
    assert_eq!(found, paid);
}

on_both!(
    hostile_search_text_is_only_ever_words,
    search_ranks_and_scopes
);
