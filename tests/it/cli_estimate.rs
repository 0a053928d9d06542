//! `devatar estimate`: prices the demo project before anything runs.

use crate::common;

use common::*;
use serde_json::Value;

#[test]
fn estimate_prices_each_scene_and_maps_bad_input_to_exit_2() {
    let demo = repo().join("examples/demo.toml");
    let demo = demo.to_str().unwrap();
    let out = run(&repo(), &["estimate", demo, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let est: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(est["route"], "cloud");
    let scenes = est["scenes"].as_array().unwrap();
    assert_eq!(scenes.len(), 3);
    let sum: f64 = scenes.iter().map(|s| s["usd"].as_f64().unwrap()).sum();
    assert!(sum > 1.0, "three cloud scenes cost over a dollar: {sum}");
    assert!((est["totalUsd"].as_f64().unwrap() - sum).abs() < 1e-9);
    for s in scenes {
        let steps: Vec<&str> = s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["step"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["AUDIO", "IMAGE", "VIDEO", "LIPSYNC"]);
    }
    // The price table can be overridden; a doubled lip-sync price raises the total.
    let pricier = command(&repo(), &["estimate", demo, "--json"])
        .env("DEVATAR_PRICES", r#"{"lipsyncPerMinute": 6.0}"#)
        .output()
        .unwrap();
    let pricier: Value = serde_json::from_slice(&pricier.stdout).unwrap();
    assert!(pricier["totalUsd"].as_f64().unwrap() > sum);

    let local = run(
        &repo(),
        &["estimate", demo, "--providers", "local", "--json"],
    );
    let local: Value = serde_json::from_slice(&local.stdout).unwrap();
    assert_eq!(local["totalUsd"], 0.0);

    assert_eq!(
        run(&repo(), &["estimate", demo, "--providers", "cheap"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&repo(), &["estimate", "/no/such.toml"]).status.code(),
        Some(2)
    );
    let bad_prices = command(&repo(), &["estimate", demo])
        .env("DEVATAR_PRICES", r#"{"videoFirst5s": -1}"#)
        .output()
        .unwrap();
    assert_eq!(bad_prices.status.code(), Some(2));
}
