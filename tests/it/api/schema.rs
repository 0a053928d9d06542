//! Issue 17 item 8: the OpenAPI document is exact — a bounded schemathesis run (installed by
//! `scripts/install-deps.sh --test`) against the in-process server finds no 5xx and no mismatch between what
//! the document says and what the server does, with every check on and a fixed seed. One worker: schemathesis's
//! generator describes strategies through `ast`, which CPython 3.11 does not make thread-safe (two workers once
//! failed with "AST constructor recursion depth mismatch"), and one is as fast here (about 23 s on SQLite, 33 s
//! on PostgreSQL on the 2-core machine).
//!
//! Left out of the run: `POST /api/assets` (its positive data are random bytes, which the upload rightly refuses
//! as 415: uploads are tested in `api.rs` and `hostile.rs`); the routes that start renders
//! (`…/generate`, `…/preview`, `…/render`) and `GET /api/runs/{id}/events` (a stream that lasts as long as a
//! run); `POST /api/logout` (it would end the test's own session — the run uses a bearer token, but logout is
//! about cookies and is tested in `api.rs`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::common::app::TestApp;

/// The operations left out (by operation id, each unique to its route): see the module comment.
const EXCLUDED: [&str; 6] = [
    "upload", "logout", "generate", "preview", "render", "events",
];

/// Where `install-deps.sh --test` puts schemathesis.
const ST: &str = "/usr/local/share/devatar/venv-test/bin/st";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_mismatch() {
    assert!(
        Path::new(ST).exists(),
        "{ST} is missing: run scripts/install-deps.sh --test"
    );
    let app = TestApp::start().await;
    let token = app.token().await;
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/api/schemathesis.toml");
    let started = Instant::now();
    let url = app.url("/api/openapi.json");
    let auth = format!("Authorization: Bearer {token}");
    // schemathesis and hypothesis keep caches in the working folder: a temporary one, not the checkout.
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(ST)
            .current_dir(cwd)
            .arg("--config-file")
            .arg(config)
            .args(["run", &url, "-H", &auth])
            .args(["--checks", "all", "--seed", "17", "--max-examples", "8"])
            .args(["--workers", "1", "--phases", "examples,coverage,fuzzing"])
            .args(["--no-shrink", "--generation-database", "none", "--no-color"])
            .args(["--request-timeout", "10"])
            .args(
                EXCLUDED
                    .iter()
                    .flat_map(|id| ["--exclude-operation-id", id]),
            )
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("schemathesis took {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the exact schema rests on: text is not trimmed but refused with surrounding whitespace (422 naming the
/// field), NUL is refused in bodies (422) and paths (400), and a create's required fields are in its schema.
#[tokio::test]
async fn text_is_taken_as_stored_and_the_document_says_what_is_required() {
    let app = TestApp::start().await;
    let token = app.token().await;
    let http = devatar::net::client_builder().build().unwrap();
    for (body, field) in [
        (
            serde_json::json!({"name": "ann", "displayName": " Ann", "triggerWord": "TOK_ANN"}),
            "displayName",
        ),
        (
            serde_json::json!({"name": "ann", "displayName": "Ann", "triggerWord": "TOK_ANN", "headshotAssetId": "a\u{0}b"}),
            "headshotAssetId",
        ),
    ] {
        let r = http
            .post(app.url("/api/identities"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let err: serde_json::Value = r.json().await.unwrap();
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let r = http
        .get(app.url("/api/projects/a%00b"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let doc = app.get_json(&token, "/api/openapi.json").await;
    let create = &doc["components"]["schemas"]["IdentityCreate"];
    assert_eq!(
        create["required"],
        serde_json::json!(["name", "displayName", "triggerWord"]),
        "{create}"
    );
    let name = &create["properties"]["name"];
    assert_eq!(
        (name["type"].as_str(), name["maxLength"].as_u64()),
        (Some("string"), Some(64)),
        "{name}"
    );
    let op = &doc["paths"]["/api/identities"]["post"]["requestBody"]["content"]["application/json"];
    assert_eq!(op["schema"]["$ref"], "#/components/schemas/IdentityCreate");
    let gate = &doc["components"]["schemas"]["ProjectInput"]["properties"]["identityGate"];
    assert_eq!(
        gate["enum"],
        serde_json::json!(["off", "warn", "retry", "strict", null])
    );
    assert!(doc["paths"]["/api/logs"]["get"]["responses"]["400"].is_object());
}
