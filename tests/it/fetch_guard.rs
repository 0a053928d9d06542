//! The outbound fetch guard over real HTTP: redirects are re-checked and limited.

use axum::extract::Path;
use axum::response::Redirect;
use devatar::net::{FetchError, FetchGuard};
use reqwest::Method;

async fn start() -> String {
    let app = axum::Router::new()
        .route(
            "/hop/{n}",
            axum::routing::get(|Path(n): Path<u32>| async move {
                if n == 0 {
                    Redirect::temporary("/done").into_response_parts()
                } else {
                    Redirect::temporary(&format!("/hop/{}", n - 1)).into_response_parts()
                }
            }),
        )
        .route("/done", axum::routing::get(|| async { "done" }))
        .route(
            "/to-metadata",
            axum::routing::get(|| async {
                Redirect::temporary("http://metadata.google.internal/computeMetadata/v1/")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

trait Parts {
    fn into_response_parts(self) -> axum::response::Response;
}

impl Parts for Redirect {
    fn into_response_parts(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

#[tokio::test]
async fn redirects_are_followed_at_most_three_times() {
    let base = start().await;
    let guard = FetchGuard::new(true);
    let ok = guard
        .send(Method::GET, &format!("{base}/hop/2"), &[])
        .await
        .unwrap();
    assert_eq!(ok.text().await.unwrap(), "done");
    let err = guard
        .send(Method::GET, &format!("{base}/hop/5"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects(3)), "{err}");
}

#[tokio::test]
async fn loopback_is_refused_without_the_flag_and_redirects_are_rechecked() {
    let base = start().await;
    let err = FetchGuard::new(false)
        .send(Method::GET, &format!("{base}/done"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Forbidden { .. }), "{err}");
    // A redirect hop is checked again: the metadata host name is refused before any lookup or connection.
    let err = FetchGuard::new(true)
        .send(Method::GET, &format!("{base}/to-metadata"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Forbidden { .. }), "{err}");
}
