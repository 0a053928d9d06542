//! `/assets`: the asset library. Upload (drag and drop or the file picker) goes through the API's own upload
//! handler, so content sniffing, size limits and probing are the same; type tabs, folders, previews, delete.
//!
//! The upload form is `multipart/form-data`: its first field is the CSRF token (never the URL, which proxies
//! log); this handler checks it, then hands the remaining fields to the shared intake.

use askama::Template;
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::forms::{PostForm, same_token};
use super::view;
use super::{Layout, Page, UiError, enc, render};
use crate::domain::AssetId;
use crate::storage::db::AssetRecord;
use crate::web::AppState;
use crate::web::service::assets as service;

/// The kinds, with the tab labels.
const KINDS: [(&str, &str); 5] = [
    ("headshot", "Headshots"),
    ("background", "Backgrounds"),
    ("audio", "Audio"),
    ("lora", "LoRAs"),
    ("consent", "Consent records"),
];

/// One asset tile.
#[derive(Debug, Clone)]
struct AssetTile {
    id: String,
    kind: String,
    name: String,
    folder: String,
    url: String,
    is_image: bool,
    is_audio: bool,
    size: String,
    facts: String,
    uploaded: String,
    /// Identities and scenes that use it (named in the delete confirmation).
    users: Vec<String>,
}

impl AssetTile {
    /// The tile of a stored asset; `users` lists (asset id, user in words) for every asset.
    fn new(a: &AssetRecord, root: &str, users: &[(AssetId, String)]) -> Self {
        let facts = match (a.width, a.height, a.duration_seconds) {
            (Some(w), Some(h), _) => format!("{w}×{h}"),
            (_, _, Some(d)) => view::seconds(d),
            _ => String::new(),
        };
        Self {
            id: a.id.to_string(),
            kind: a.kind.clone(),
            name: a.original_name.clone().unwrap_or_else(|| a.id.to_string()),
            folder: a.folder.clone(),
            url: view::media(root, &a.object_key),
            is_image: a.mime.starts_with("image/"),
            is_audio: a.mime.starts_with("audio/"),
            size: view::bytes(a.size_bytes),
            facts,
            uploaded: view::time(a.created_at),
            users: users
                .iter()
                .filter(|(asset, _)| *asset == a.id)
                .map(|(_, who)| who.clone())
                .collect(),
        }
    }
}

/// One tab or folder link.
#[derive(Debug, Clone)]
struct Link {
    label: String,
    href: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "assets.html")]
struct AssetsPage {
    l: Layout,
    tabs: Vec<Link>,
    folders: Vec<Link>,
    folder_names: Vec<String>,
    tiles: Vec<AssetTile>,
    kind: String,
    folder: String,
    error: Option<String>,
    upload_kind: String,
    upload_folder: String,
}

/// Filters of the library.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LibraryQuery {
    kind: Option<String>,
    folder: Option<String>,
}

fn href(root: &str, kind: &str, folder: &str) -> String {
    let mut q = Vec::new();
    if !kind.is_empty() {
        q.push(format!("kind={}", enc(kind)));
    }
    if !folder.is_empty() {
        q.push(format!("folder={}", enc(folder)));
    }
    if q.is_empty() {
        format!("{root}assets")
    } else {
        format!("{root}assets?{}", q.join("&"))
    }
}

/// What a failed upload sent, shown again in the upload form.
#[derive(Debug, Default)]
struct Failed {
    message: String,
    sent: service::SentFields,
}

async fn library(
    state: &AppState,
    page: &Page,
    q: &LibraryQuery,
    status: StatusCode,
    failed: Option<Failed>,
) -> Result<Response, UiError> {
    let kind = q
        .kind
        .as_deref()
        .filter(|k| KINDS.iter().any(|(x, _)| x == k))
        .unwrap_or("");
    let folder = q.folder.as_deref().unwrap_or("").trim();
    let db = &state.storage.db;
    let assets = db.list_assets(kind, folder).await?;
    let folder_names = db.ui_asset_folders("").await?;
    let users = db.ui_asset_users().await?;
    let mut tabs = vec![Link {
        label: "All".into(),
        href: href(&page.root, "", folder),
        current: kind.is_empty(),
    }];
    tabs.extend(KINDS.iter().map(|(k, label)| Link {
        label: (*label).into(),
        href: href(&page.root, k, folder),
        current: kind == *k,
    }));
    let mut folders = vec![Link {
        label: "All folders".into(),
        href: href(&page.root, kind, ""),
        current: folder.is_empty(),
    }];
    folders.extend(folder_names.iter().map(|f| Link {
        label: f.clone(),
        href: href(&page.root, kind, f),
        current: folder == f,
    }));
    let tiles = assets
        .iter()
        .map(|a| AssetTile::new(a, &page.root, &users))
        .collect();
    render(
        status,
        &AssetsPage {
            l: page.layout("Assets", "assets"),
            tabs,
            folders,
            folder_names,
            tiles,
            kind: kind.into(),
            folder: folder.into(),
            upload_kind: match &failed {
                Some(f) if KINDS.iter().any(|(k, _)| *k == f.sent.kind) => f.sent.kind.clone(),
                _ if kind.is_empty() => "headshot".into(),
                _ => kind.into(),
            },
            upload_folder: failed
                .as_ref()
                .map_or_else(|| folder.to_string(), |f| f.sent.folder.clone()),
            error: failed.map(|f| f.message),
        },
    )
}

/// The library, filtered by kind and folder.
pub(crate) async fn page(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<LibraryQuery>,
) -> Result<Response, UiError> {
    library(&state, &page, &q, StatusCode::OK, None).await
}

/// Uploads through the shared asset intake; back to the library (showing the new file's kind and folder).
pub(crate) async fn upload(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<LibraryQuery>,
    mut multipart: Multipart,
) -> Result<Response, UiError> {
    if !csrf_field_matches(&mut multipart, &page.csrf).await {
        return Err(UiError::forbidden());
    }
    match service::upload_keeping_fields(&state, multipart).await {
        Ok(uploaded) => {
            let back = href("", &uploaded.asset.kind, &uploaded.asset.folder);
            let sep = if back.contains('?') { '&' } else { '?' };
            Ok(page.redirect(&format!("{back}{sep}ok=uploaded")))
        }
        Err((e, sent)) => {
            let message = match e.field.as_deref() {
                Some("file") | None => view::sentence(&e.message),
                Some(f) => view::sentence(&format!("{f}: {}", e.message)),
            };
            let filters = LibraryQuery {
                kind: q.kind,
                folder: q.folder,
            };
            let failed = Failed { message, sent };
            library(&state, &page, &filters, e.status, Some(failed)).await
        }
    }
}

/// The new asset as a choice for the form that uploaded it.
#[derive(Template)]
#[template(
    source = "<option value=\"{{ id }}\" selected>{{ name }}</option>",
    ext = "html"
)]
struct OptionFragment {
    id: String,
    name: String,
}

/// Uploads from another form without leaving it (the identity form's "Upload and use"): 201 with the new asset
/// as an `<option>` for that form's select, or the status with the error in words (plain text).
pub(crate) async fn upload_inline(
    State(state): State<AppState>,
    page: Page,
    mut multipart: Multipart,
) -> Response {
    if !csrf_field_matches(&mut multipart, &page.csrf).await {
        return (StatusCode::FORBIDDEN, UiError::forbidden().message_text()).into_response();
    }
    match service::upload(&state, multipart).await {
        Ok(uploaded) => {
            let a = uploaded.asset;
            let option = OptionFragment {
                name: a.original_name.clone().unwrap_or_else(|| a.id.to_string()),
                id: a.id.to_string(),
            };
            (
                StatusCode::CREATED,
                Html(option.render().unwrap_or_default()),
            )
                .into_response()
        }
        Err(e) => (e.status, view::sentence(&e.message)).into_response(),
    }
}

/// True when the form's first field is `csrf` and carries the session's token (read up to 256 bytes).
pub(super) async fn csrf_field_matches(multipart: &mut Multipart, expected: &str) -> bool {
    let Ok(Some(mut field)) = multipart.next_field().await else {
        return false;
    };
    if field.name() != Some("csrf") {
        return false;
    }
    let mut sent = Vec::new();
    while let Ok(Some(chunk)) = field.chunk().await {
        sent.extend_from_slice(&chunk);
        if sent.len() > 256 {
            return false;
        }
    }
    std::str::from_utf8(&sent).is_ok_and(|t| same_token(t.trim(), expected))
}

/// Deletes an asset (form field `id`).
pub(crate) async fn delete(
    State(state): State<AppState>,
    page: Page,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let id = crate::domain::AssetId::from(form.get("id"));
    service::delete(&state, &id).await?;
    let back = href("", form.get("kind"), form.get("folder"));
    let sep = if back.contains('?') { '&' } else { '?' };
    Ok(page.redirect(&format!("{back}{sep}ok=asset-deleted")))
}
