//! Issue 15 in Chromium: the identity page takes a person from vetted photos to a digital twin — each photo's
//! verdict (the other person's photo left out of training), "Train my digital twin" refused without consent,
//! consent recorded on the page, then a training on the sandbox that ends listed as succeeded with its score.

use std::time::{Duration, Instant};

use super::stale::login;
use super::{Driver, PASSWORD, browser, click, fill, text, wait_for, wait_path};
use crate::common::app::TestApp;
use crate::common::cloud::fakes;
use crate::training::{identity_with_photos, settings, trainings_submitted};
use devatar::fakes::LatencyProfile;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_page_vets_records_consent_and_trains_a_twin() {
    let fakes = fakes(LatencyProfile::Fast, 0.05).await;
    let owned = settings(&fakes.base_url());
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::builder()
        .password(Some(PASSWORD))
        .envs(&pairs)
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let id = identity_with_photos(&app.config, &app.storage, dir.path(), "eileen").await;
    // A signed statement uploaded as a consent record (kind `consent`); a headshot is not one.
    let token = app.token().await;
    let statement = b"I, Eileen Collins, agree that devatar trains a likeness of me.\n".to_vec();
    let (status, asset) = crate::api::hostile::upload(&app, &token, "consent", statement).await;
    assert_eq!(status, 201, "{asset}");
    let asset_id = asset["id"].as_str().unwrap().to_string();
    let chromedriver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = browser(&chromedriver, profile.path()).await;
    login(&driver, &app.base).await;
    let edit = format!("/identities/{id}/edit");
    driver.goto(format!("{}{edit}", app.base)).await.unwrap();

    // Vetting: the other person's photo is blocked and left out of training; the rest are usable.
    let photos = text(&driver, "#photos").await;
    assert!(photos.contains("left out of training"), "{photos}");
    let usable = text(&driver, "#twin-photos").await;
    assert!(usable.contains("usable photos"), "{usable}");

    // Training without consent is refused on the page, naming how to record it; nothing reaches Fal.
    click(&driver, "#train-button").await;
    let refused = text(&driver, "#twin-error").await;
    assert!(refused.contains("consent"), "{refused}");
    assert_eq!(trainings_submitted(&fakes), 0);

    // Consent recorded through the form.
    driver.goto(format!("{}{edit}", app.base)).await.unwrap();
    fill(&driver, "consent-by", "Eileen Collins").await;
    fill(&driver, "consent-note", "Agreed on camera, 2026-12-07").await;
    super::choose(&driver, "consent-file", &asset_id).await;
    click(&driver, "#consent-submit").await;
    wait_path(&driver, &edit).await;
    let status = text(&driver, "#consent-status").await;
    assert!(
        status.contains("Consent on record: Eileen Collins"),
        "{status}"
    );
    assert!(
        status.contains(&asset_id),
        "the statement is linked: {status}"
    );

    // Train: the page lists the training until it has succeeded, with the test image's score.
    click(&driver, "#train-button").await;
    wait_path(&driver, &edit).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if driver
            .find(thirtyfour::By::Css(
                "#training-list li[data-status='succeeded']",
            ))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the training did not succeed in time"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        driver.refresh().await.unwrap();
    }
    let line = wait_for(&driver, "#training-list li[data-status='succeeded']", 5)
        .await
        .text()
        .await
        .unwrap();
    assert!(line.contains("distance 0."), "{line}");
    assert_eq!(trainings_submitted(&fakes), 1, "one training submitted");
    // The run history lists the training.
    driver.goto(format!("{}/", app.base)).await.unwrap();
    let recent = text(&driver, "main").await;
    assert!(recent.contains("eileen: digital twin training"), "{recent}");
    let _ = driver.quit().await;
    fakes.shutdown().await;
}
