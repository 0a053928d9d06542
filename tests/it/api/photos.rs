//! An identity's reference photos through the API, against the in-process router: upload (sniffed, limited and
//! decoded like image uploads), the list with each photo's analysis and the references' agreement, removal, and
//! the collection deleted with its identity.

use crate::common::app::TestApp;
use crate::face::{astronaut, grace_hopper, same_person_variant};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// Uploads `files` (name, bytes) to identity `id`'s photos; returns the status and the JSON body.
async fn upload(app: &TestApp, token: &str, id: &str, files: Vec<(&str, Vec<u8>)>) -> (u16, Value) {
    let mut form = Form::new();
    for (name, bytes) in files {
        form = form.part("file", Part::bytes(bytes).file_name(name.to_string()));
    }
    let r = app
        .http
        .post(app.url(&format!("/api/identities/{id}/photos")))
        .bearer_auth(token)
        .header("connection", "close")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn photo<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["fileName"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {doc}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_photos_are_uploaded_listed_removed_and_deleted_with_their_identity() {
    let app = TestApp::start().await;
    let token = app.token().await;
    let created = app
        .http
        .post(app.url("/api/identities"))
        .bearer_auth(&token)
        .json(&json!({"name": "eileen", "displayName": "Eileen Collins", "triggerWord": "TOK_EILEEN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let read = |p: std::path::PathBuf| std::fs::read(p).unwrap();

    // Two photos of one person, in one upload, under a hostile name.
    let (status, doc) = upload(
        &app,
        &token,
        &id,
        vec![
            ("../../astronaut.png", read(astronaut())),
            ("variant.jpg", read(same_person_variant(dir.path()))),
        ],
    )
    .await;
    assert_eq!(status, 201, "{doc}");
    let added = doc["added"].as_array().unwrap();
    assert_eq!(added.len(), 2);
    assert!(added.iter().all(|a| a["new"] == true), "{doc}");
    assert_eq!(doc["agree"], true, "{doc}");
    assert!(
        doc["agreement"]
            .as_str()
            .unwrap()
            .starts_with("2 photos agree (worst 0."),
        "{doc}"
    );
    let first = photo(&doc, "astronaut.png");
    assert_eq!(
        (first["width"].as_i64(), first["height"].as_i64()),
        (Some(512), Some(512))
    );
    assert_eq!(first["faceCount"], 1);
    assert_eq!(first["outlier"], false);
    assert!(first["sharpness"].as_f64().unwrap() > 25.0);
    assert!(first["box"]["w"].as_u64().unwrap() > 50);
    assert!(!doc.to_string().contains("embedding"), "{doc}");

    // The photo is served to authenticated callers.
    let url = first["url"].as_str().unwrap();
    assert!(url.starts_with("/media/") && url.ends_with(".png"), "{url}");
    let served = app
        .http
        .get(app.url(url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);

    // Another person: named as the outlier.
    let (status, doc) = upload(
        &app,
        &token,
        &id,
        vec![("grace_hopper.jpg", read(grace_hopper()))],
    )
    .await;
    assert_eq!(status, 201, "{doc}");
    assert_eq!(doc["agree"], false);
    assert!(
        doc["agreement"]
            .as_str()
            .unwrap()
            .starts_with("photo grace_hopper.jpg ("),
        "{doc}"
    );
    let other = photo(&doc, "grace_hopper.jpg");
    assert_eq!(other["outlier"], true);
    assert!(other["distance"].as_f64().unwrap() > 0.6, "{other}");
    assert_eq!(photo(&doc, "variant.jpg")["outlier"], false);
    // Each listed photo carries its vetting; the vet route answers the vetting alone.
    assert_eq!(
        (other["verdict"].as_str(), other["usable"].as_bool()),
        (Some("blocked"), Some(false))
    );
    assert!(
        other["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("looks like someone else"),
        "{other}"
    );
    assert_eq!(photo(&doc, "astronaut.png")["verdict"], "warn");
    let vet = app
        .get_json(&token, &format!("/api/identities/{id}/vet"))
        .await;
    assert_eq!(
        (vet["verdict"].as_str(), vet["usablePhotos"].as_u64()),
        (Some("blocked"), Some(1)),
        "{vet}"
    );
    assert_eq!(vet["photos"].as_array().unwrap().len(), 3);
    assert_eq!(
        photo(&vet, "variant.jpg")["reasons"][0],
        "too small: 440×460 pixels (at least 512×512)"
    );
    assert_eq!(vet["summary"]["count"], 3);
    let missing = app
        .http
        .get(app.url("/api/identities/no-such-identity/vet"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // The identity test checks each photo and their agreement, naming the outlier.
    let tested: Value = app
        .http
        .post(app.url(&format!("/api/identities/{id}/test")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let checks = tested["checks"].as_array().unwrap();
    let named =
        |name: &str| -> Vec<&Value> { checks.iter().filter(|c| c["name"] == name).collect() };
    assert_eq!(
        named("referencePhotos")[0]["detail"],
        "3 reference photos",
        "{tested}"
    );
    let each = named("referencePhoto");
    assert_eq!(each.len(), 3, "{tested}");
    assert!(each.iter().all(|c| c["ok"] == true), "{tested}");
    let agreement = named("referenceAgreement")[0];
    assert_eq!(agreement["ok"], false);
    assert!(
        agreement["detail"]
            .as_str()
            .unwrap()
            .contains("grace_hopper.jpg"),
        "{agreement}"
    );
    assert_eq!(tested["ok"], false);

    // The same content again adds nothing; bad files are refused like image uploads.
    let (status, doc) = upload(&app, &token, &id, vec![("again.png", read(astronaut()))]).await;
    assert_eq!(
        (status, doc["added"][0]["new"].as_bool()),
        (201, Some(false))
    );
    assert_eq!(doc["photos"].as_array().unwrap().len(), 3);
    let (status, err) = upload(
        &app,
        &token,
        &id,
        vec![("notes.png", b"plain text".to_vec())],
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (415, Some("file")),
        "{err}"
    );
    let mut big = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    big.resize(21 << 20, 0);
    let (status, _) = upload(&app, &token, &id, vec![("big.png", big)]).await;
    assert_eq!(status, 413);
    let (status, _) = upload(
        &app,
        &token,
        "no-such-identity",
        vec![("a.png", read(astronaut()))],
    )
    .await;
    assert_eq!(status, 404);

    // Listed, then one removed.
    let listed = app
        .get_json(&token, &format!("/api/identities/{id}/photos"))
        .await;
    assert_eq!(listed["photos"].as_array().unwrap().len(), 3, "{listed}");
    let other_id = photo(&listed, "grace_hopper.jpg")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let delete = |photo_id: String| {
        app.http
            .delete(app.url(&format!("/api/identities/{id}/photos/{photo_id}")))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(delete(other_id.clone()).await.unwrap().status(), 204);
    assert_eq!(delete(other_id).await.unwrap().status(), 404);
    let listed = app
        .get_json(&token, &format!("/api/identities/{id}/photos"))
        .await;
    assert_eq!(listed["photos"].as_array().unwrap().len(), 2);
    assert_eq!(listed["agree"], true);

    // Deleting the identity deletes its photos.
    let gone = app
        .http
        .delete(app.url(&format!("/api/identities/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let pool = app.pool().await;
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM identity_photos WHERE identity_id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(left, 0);
}

/// The identity page's photo section, server-side: upload (CSRF token as the first field), the thumbnails with
/// each photo's verdict, the agreement line, a refused file shown on the page, removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_page_lists_uploads_and_removes_reference_photos() {
    use crate::common::app::PASSWORD;
    let app = TestApp::start().await;
    let http = devatar::net::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http
        .post(app.url("/api/login"))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let session = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = login.json::<Value>().await.unwrap()["csrfToken"]
        .as_str()
        .unwrap()
        .to_string();
    let token = app.token().await;
    let id = app
        .http
        .post(app.url("/api/identities"))
        .bearer_auth(&token)
        .json(&json!({"name": "eileen", "displayName": "Eileen Collins", "triggerWord": "TOK_EILEEN"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let post = |csrf: Option<&str>, files: Vec<(&str, Vec<u8>)>| {
        let mut form = Form::new();
        if let Some(c) = csrf {
            form = form.text("csrf", c.to_string());
        }
        for (name, bytes) in files {
            form = form.part("file", Part::bytes(bytes).file_name(name.to_string()));
        }
        http.post(app.url(&format!("/identities/{id}/photos")))
            .header("cookie", &session)
            .multipart(form)
            .send()
    };
    let page = || async {
        http.get(app.url(&format!("/identities/{id}/edit")))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let empty = page().await;
    assert!(empty.contains("No reference photos yet."), "{empty}");
    let form = empty.split("id=\"photo-upload-form\"").nth(1).unwrap();
    assert!(
        form.trim_start_matches(|c| c != '<')
            .starts_with("<input type=\"hidden\" name=\"csrf\""),
        "the CSRF token is the upload form's first field: {form}"
    );

    let astronaut_png = std::fs::read(astronaut()).unwrap();
    assert_eq!(
        post(None, vec![("a.png", astronaut_png.clone())])
            .await
            .unwrap()
            .status(),
        403
    );
    let variant = std::fs::read(same_person_variant(dir.path())).unwrap();
    let added = post(
        Some(&csrf),
        vec![("astronaut.png", astronaut_png), ("variant.jpg", variant)],
    )
    .await
    .unwrap();
    assert_eq!(added.status(), 303);
    let location = added.headers()["location"].to_str().unwrap();
    assert!(
        location.ends_with(&format!("identities/{id}/edit?ok=photos-added#photos")),
        "{location}"
    );
    let html = page().await;
    assert!(
        html.contains("Reference agreement: 2 photos agree (worst 0."),
        "{html}"
    );
    assert!(html.contains("alt=\"Reference photo astronaut.png\""));
    assert!(
        html.contains("src=\"../../media/"),
        "thumbnails are relative media URLs"
    );
    assert!(
        html.contains("one face (17 % of the shorter side)"),
        "{html}"
    );

    let grace = std::fs::read(grace_hopper()).unwrap();
    post(Some(&csrf), vec![("grace_hopper.jpg", grace)])
        .await
        .unwrap();
    let html = page().await;
    assert!(
        html.contains("Reference agreement: photo grace_hopper.jpg (0.")
            && html.contains("looks like someone else"),
        "{html}"
    );
    let tile = html
        .split("alt=\"Reference photo grace_hopper.jpg\"")
        .nth(1)
        .and_then(|t| t.split("</li>").next())
        .unwrap();
    assert!(tile.contains("blocked: left out of training"), "{html}");
    assert!(
        html.contains("Training photos: blocked</strong> — 1 of 3 photos usable for training: training may not go ahead"),
        "{html}"
    );

    let refused = post(Some(&csrf), vec![("notes.png", b"plain text".to_vec())])
        .await
        .unwrap();
    assert_eq!(refused.status(), 415);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("id=\"photo-error\"") && html.contains("PNG or JPEG"),
        "{html}"
    );

    let photos = app
        .get_json(&token, &format!("/api/identities/{id}/photos"))
        .await;
    let other = photo(&photos, "grace_hopper.jpg")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let removed = http
        .post(app.url(&format!("/identities/{id}/photos/{other}/delete")))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 303);
    let html = page().await;
    assert!(
        !html.contains("grace_hopper.jpg") && html.contains("2 photos agree"),
        "{html}"
    );
}
