//! `/assets/{file}`: our CSS and JavaScript and the vendored htmx, compiled into the binary and served with
//! long cache lifetimes (pages add `?v=<content hash>` so a new build is fetched at once).

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (name, MIME type, content).
const FILES: [(&str, &str, &[u8]); 4] = [
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/htmx.min.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../assets/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../assets/favicon.svg"),
    ),
];

/// A short hash of every file, for cache busting.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    // FNV-1a over all files: stable across builds with the same content.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (_, _, body) in FILES {
        for b in body {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:08x}", h as u32)
});

/// The current asset version string.
pub(crate) fn version() -> &'static str {
    VERSION.as_str()
}

/// Serves one embedded file.
pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, mime, body)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}
