//! Issue 15 in Chromium: the identity page takes a person from vetted photos to a digital twin — each photo's
//! verdict (the other person's photo left out of training), "Train my digital twin" refused without consent,
//! consent recorded on the page, then a training on the sandbox followed live on the page (its event stream) until,
//! without a reload, it is listed as succeeded with its score, the verdict and the trained LoRA in the form.

use super::stale::login;
use super::{Driver, PASSWORD, browser, click, fill, js, text, wait_for, wait_js};
use crate::common::app::TestApp;
use crate::common::cloud::fakes;
use crate::training::{identity_with_photos, settings, trainings_submitted};
use devatar::fakes::LatencyProfile;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_page_vets_records_consent_and_trains_a_twin() {
    // Realistic latencies scaled to a 3.6 s training: long enough to watch it run on the page.
    let fakes = fakes(LatencyProfile::Realistic, 0.015).await;
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
    wait_notice(&driver, "consent-saved").await;
    let status = text(&driver, "#consent-status").await;
    assert!(
        status.contains("Consent on record: Eileen Collins"),
        "{status}"
    );
    assert!(
        status.contains(&asset_id),
        "the statement is linked: {status}"
    );

    // Train: the page follows the training live (queue position, Fal's latest line) and, without being
    // reloaded, ends showing it succeeded with the test image's score, the verdict and the trained LoRA, which
    // the identity form now holds too (saving it keeps the LoRA).
    click(&driver, "#train-button").await;
    wait_notice(&driver, "training-started").await;
    wait_for(&driver, "#training-live", 5).await;
    let watch = "window.notReloaded = true; var box = document.getElementById('training-live'); \
                 window.shown = [box.textContent]; new MutationObserver(function () { \
                 window.shown.push(box.textContent); }).observe(box, {subtree: true, childList: true, \
                 characterData: true}); return document.getElementById('train-button').disabled;";
    assert_eq!(
        js(&driver, watch).await,
        true,
        "no second training meanwhile"
    );
    let line = wait_for(&driver, "#training-list li[data-status='succeeded']", 90)
        .await
        .text()
        .await
        .unwrap();
    assert!(line.contains("distance 0."), "{line}");
    assert_eq!(
        js(&driver, "return window.notReloaded === true").await,
        true
    );
    let shown = js(&driver, "return window.shown").await;
    assert!(
        shown.to_string().contains("Training step"),
        "the page showed the training's progress: {shown}"
    );
    let verdict = text(&driver, "#twin-verdict").await;
    assert!(
        verdict.starts_with("Digital twin ready: looks like you (0."),
        "{verdict}"
    );
    assert!(
        driver
            .find(thirtyfour::By::Id("training-live"))
            .await
            .is_err()
    );
    let lora = app.get_json(&token, &format!("/api/identities/{id}")).await["loraUrl"].clone();
    assert!(lora.is_string(), "the identity has its LoRA");
    assert_eq!(
        js(&driver, "return document.getElementById('f-loraUrl').value").await,
        lora
    );
    assert!(
        text(&driver, "#twin-lora")
            .await
            .contains(lora.as_str().unwrap())
    );
    assert_eq!(trainings_submitted(&fakes), 1, "one training submitted");
    // The run history lists the training.
    driver.goto(format!("{}/", app.base)).await.unwrap();
    let recent = text(&driver, "main").await;
    assert!(recent.contains("eileen: digital twin training"), "{recent}");
    let _ = driver.quit().await;
    fakes.shutdown().await;
}

/// Waits for the edit page a form post redirected to with notice `ok` (the page before it has the same path, so
/// waiting for the path alone could read the old page).
async fn wait_notice(driver: &thirtyfour::WebDriver, ok: &str) {
    let loaded =
        format!("location.search.indexOf('ok={ok}') >= 0 && document.readyState === 'complete'");
    wait_js(driver, &loaded, 30).await;
}
