//! The sandbox learns faces: a LoRA stands for a person.
//!
//! `--lora-face URL_OR_SHA256=PHOTO[,PHOTO…]` (or `POST /__faces`) says which face photos a LoRA URL, or the
//! SHA-256 of the LoRA file's content, stands for; `--other-face PHOTO` adds faces of nobody in particular. The fake
//! Flux then answers a request whose `loras[0].path` is such a LoRA with one of that person's photos instead of a
//! test card: the photo is chosen by the request's `seed`, cropped and scaled by it too (deterministically: the same
//! seed gives the same picture), at the requested `image_size`, always keeping the face whole. The fault
//! `identity-drift:N` makes the next N such images show somebody else (another mapped person, else an
//! `--other-face` photo). Photos are read once, when they are registered; the face engine (when its models are
//! installed) finds each photo's face, otherwise the middle of the photo is kept, and checks that each picture
//! shows exactly one face (a gate scoring it must not fail on the sandbox's own framing).

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use image::{DynamicImage, ImageOutputFormat, Rgb, RgbImage, imageops};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;

use super::FakesError;
use super::server::{Ctx, Shared, lock};
use super::util::json as json_resp;
use crate::face::{self, FaceBox, FaceEngine, Photo};

/// One mapping of a LoRA to the photos of the person it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraFace {
    /// The LoRA's URL as requests send it, or the lower-case hex SHA-256 of its content.
    pub lora: String,
    /// Photos of the person (PNG or JPEG).
    pub photos: Vec<PathBuf>,
}

impl LoraFace {
    /// The mapping of `lora` (a URL or a SHA-256) to `photos`.
    pub fn new(lora: &str, photos: Vec<PathBuf>) -> Self {
        let lora = lora.trim();
        let lora = if is_sha256(lora) {
            lora.to_ascii_lowercase()
        } else {
            lora.to_string()
        };
        Self { lora, photos }
    }

    fn by_hash(&self) -> bool {
        is_sha256(&self.lora)
    }
}

impl FromStr for LoraFace {
    type Err = FakesError;

    /// `URL_OR_SHA256=PHOTO[,PHOTO…]` (split at the last `=`, so URLs may carry a query).
    fn from_str(spec: &str) -> Result<Self, FakesError> {
        let bad = |why: &str| FakesError::Config(format!("--lora-face `{spec}`: {why}"));
        let (lora, photos) = spec
            .rsplit_once('=')
            .ok_or_else(|| bad("expected URL_OR_SHA256=PHOTO[,PHOTO…]"))?;
        let photos: Vec<PathBuf> = photos
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        if lora.trim().is_empty() || photos.is_empty() {
            return Err(bad("both the LoRA and at least one photo are needed"));
        }
        Ok(Self::new(lora, photos))
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A registered photo: its pixels and the face in it (box and eye line), when the engine found one.
pub(crate) struct FacePhoto {
    path: PathBuf,
    rgb: RgbImage,
    face: Option<(FaceBox, f64)>,
}

/// What a Flux request asked for that decides who it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PersonAsk {
    /// `loras[0].path`.
    pub lora: String,
    /// The request's seed (random when it gave none).
    pub seed: u64,
    /// Whether an `identity-drift` fault made this image somebody else.
    pub drift: bool,
}

/// The people the sandbox knows.
#[derive(Default)]
pub(crate) struct FaceBook {
    people: Vec<(LoraFace, Vec<Arc<FacePhoto>>)>,
    others: Vec<Arc<FacePhoto>>,
    /// SHA-256 of LoRA URLs fetched so far (for mappings by content hash).
    hashes: HashMap<String, String>,
    /// The face engine, when its models loaded: it finds the photos' faces and checks each picture.
    engine: Option<Arc<FaceEngine>>,
}

impl FaceBook {
    /// Whether no face is known (Flux answers with test cards).
    pub(crate) fn is_empty(&self) -> bool {
        self.people.is_empty() && self.others.is_empty()
    }

    /// Whether some mapping is by content hash and `url` has not been hashed yet.
    pub(crate) fn needs_hash(&self, url: &str) -> bool {
        self.people.iter().any(|(l, _)| l.by_hash())
            && !self.people.iter().any(|(l, _)| l.lora == url.trim())
            && !self.hashes.contains_key(url)
    }

    /// Remembers the content hash of a LoRA URL.
    pub(crate) fn remember_hash(&mut self, url: &str, sha256: String) {
        self.hashes.insert(url.to_string(), sha256);
    }

    /// Adds what `other` holds (a later mapping of the same LoRA replaces the earlier one).
    pub(crate) fn merge(&mut self, other: FaceBook) {
        for (lora, photos) in other.people {
            self.people.retain(|(l, _)| l.lora != lora.lora);
            self.people.push((lora, photos));
        }
        self.others.extend(other.others);
        self.engine = self.engine.take().or(other.engine);
    }

    /// The engine that checks pictures, when loaded.
    pub(crate) fn engine(&self) -> Option<Arc<FaceEngine>> {
        self.engine.clone()
    }

    /// The person a LoRA URL stands for: by URL, else by the content hash learned for it.
    fn person_of(&self, url: &str) -> Option<usize> {
        let url = url.trim();
        let hash = self.hashes.get(url);
        self.people
            .iter()
            .position(|(l, _)| l.lora == url || hash.is_some_and(|h| *h == l.lora))
    }

    /// The photo an image shows: one of the LoRA's person, or with drift one of somebody else; `None` when the
    /// LoRA stands for nobody and there is no drift (a test card then).
    pub(crate) fn pick(&self, ask: &PersonAsk) -> Option<Arc<FacePhoto>> {
        let person = self.person_of(&ask.lora);
        let pool: Vec<&Arc<FacePhoto>> = if ask.drift {
            let strangers: Vec<&Arc<FacePhoto>> = self
                .people
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != person)
                .flat_map(|(_, (_, photos))| photos)
                .chain(&self.others)
                .collect();
            if strangers.is_empty() {
                tracing::warn!("fakes: identity drift asked for, but no other face is known");
                person
                    .map(|i| self.people[i].1.iter().collect())
                    .unwrap_or_default()
            } else {
                strangers
            }
        } else {
            person.map(|i| self.people[i].1.iter().collect())?
        };
        let n = pool.len() as u64;
        (n > 0).then(|| Arc::clone(pool[(ask.seed % n) as usize]))
    }

    /// `GET /__faces`: the mappings and other faces, by path.
    pub(crate) fn describe(&self) -> Value {
        let paths = |photos: &[Arc<FacePhoto>]| -> Vec<String> {
            photos
                .iter()
                .map(|p| p.path.display().to_string())
                .collect()
        };
        json!({
            "loras": self.people.iter().map(|(l, photos)| json!({
                "lora": l.lora,
                "photos": paths(photos),
                "facesFound": photos.iter().filter(|p| p.face.is_some()).count(),
            })).collect::<Vec<_>>(),
            "others": paths(&self.others),
        })
    }
}

/// Reads the photos of `loras` and `others` and finds their faces (with the engine in `models`, when it loads).
/// Blocking.
pub(crate) fn load(
    loras: &[LoraFace],
    others: &[PathBuf],
    models: &Path,
) -> Result<FaceBook, FakesError> {
    if loras.is_empty() && others.is_empty() {
        return Ok(FaceBook::default());
    }
    let engine = match FaceEngine::load(models) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!("fakes: face photos are cropped around their middle: {e}");
            None
        }
    };
    let mut seen: HashMap<PathBuf, Arc<FacePhoto>> = HashMap::new();
    let mut read = |path: &Path| -> Result<Arc<FacePhoto>, FakesError> {
        if let Some(p) = seen.get(path) {
            return Ok(Arc::clone(p));
        }
        let photo =
            Photo::open(path).map_err(|e| FakesError::Config(format!("face photo: {e}")))?;
        let face = engine.as_ref().and_then(|e| {
            e.analyse(&photo.rgb)
                .first()
                .map(|f| (f.bbox, face::framing::eye_y(f)))
        });
        let loaded = Arc::new(FacePhoto {
            path: path.to_path_buf(),
            rgb: photo.rgb,
            face,
        });
        seen.insert(path.to_path_buf(), Arc::clone(&loaded));
        Ok(loaded)
    };
    let mut book = FaceBook::default();
    for lora in loras {
        let photos = lora
            .photos
            .iter()
            .map(|p| read(p))
            .collect::<Result<_, _>>()?;
        book.merge(FaceBook {
            people: vec![(lora.clone(), photos)],
            ..FaceBook::default()
        });
    }
    book.others = others.iter().map(|p| read(p)).collect::<Result<_, _>>()?;
    book.engine = engine;
    Ok(book)
}

/// The picture a Flux image with a LoRA shows, registered as media: `None` when the LoRA stands for nobody (and
/// there is no drift), so a test card answers.
pub(crate) async fn still(
    shared: &Shared,
    ask: &PersonAsk,
    out: (u32, u32),
    jpeg: bool,
) -> Option<Result<String, String>> {
    if lock(&shared.faces).needs_hash(&ask.lora) {
        let hash = super::media::fetch_capped(&shared.http, &ask.lora)
            .await
            .map(|b| sha256_hex(&b))
            .unwrap_or_default();
        lock(&shared.faces).remember_hash(&ask.lora, hash);
    }
    let photo = lock(&shared.faces).pick(ask)?;
    let name = still_name(&photo, ask.seed, out, jpeg);
    if shared.media.get(&name).is_some() {
        return Some(Ok(name));
    }
    let (seed, engine) = (ask.seed, lock(&shared.faces).engine());
    let made = tokio::task::spawn_blocking(move || {
        encode(checked_compose(&photo, seed, out, engine.as_deref()), jpeg)
    })
    .await;
    Some(match made {
        Ok(Ok(bytes)) => Ok(shared
            .media
            .ready_image(&name, bytes.into(), jpeg, out.0, out.1)),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(format!("the face still stopped: {e}")),
    })
}

/// `GET /__faces` (what is known) and `POST /__faces` (`{"loraFaces": ["URL_OR_SHA256=PHOTO,…"], "otherFaces":
/// ["PHOTO"], "append": false}`: replaces what is known, or adds to it with `append`).
pub(crate) async fn admin(ctx: &Ctx, req: Request) -> Response {
    if req.method() == Method::GET {
        return json_resp(200, lock(&ctx.shared.faces).describe());
    }
    if req.method() != Method::POST {
        return json_resp(405, json!({"error": "use GET or POST"}));
    }
    let body = match axum::body::to_bytes(req.into_body(), 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return json_resp(400, json!({"error": e.to_string()})),
    };
    let parsed = serde_json::from_slice::<Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| parse_admin(&v).map_err(|e| e.to_string()));
    let (loras, others, append) = match parsed {
        Ok(p) => p,
        Err(e) => return json_resp(400, json!({"error": e})),
    };
    match ctx.shared.set_faces(loras, others, append).await {
        Ok(()) => json_resp(200, lock(&ctx.shared.faces).describe()),
        Err(e) => json_resp(422, json!({"error": e.to_string()})),
    }
}

/// The mappings, other faces and `append` flag of a `POST /__faces` body.
fn parse_admin(v: &Value) -> Result<(Vec<LoraFace>, Vec<PathBuf>, bool), FakesError> {
    let strings = |key: &str| -> Vec<String> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    if !v.is_object() {
        return Err(FakesError::Config(
            "expected {\"loraFaces\": [\"URL_OR_SHA256=PHOTO,…\"], \"otherFaces\": [\"PHOTO\"], \"append\": bool}".into(),
        ));
    }
    let loras = strings("loraFaces")
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let others = strings("otherFaces")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    Ok((
        loras,
        others,
        v.get("append").and_then(Value::as_bool).unwrap_or(false),
    ))
}

/// Uniform numbers in [0, 1) drawn from `seed`.
fn draws(seed: u64) -> [f64; 4] {
    let d = Sha256::digest(seed.to_be_bytes());
    std::array::from_fn(|i| f64::from(u16::from_be_bytes([d[2 * i], d[2 * i + 1]])) / 65536.0)
}

/// The part of `photo` that must stay whole: the face with room above and below, or the middle of the photo.
fn keep_region(photo: &FacePhoto) -> (f64, f64, f64, f64) {
    let (pw, ph) = (f64::from(photo.rgb.width()), f64::from(photo.rgb.height()));
    match photo.face {
        Some((b, _)) => {
            let (x, y, w, h) = (
                f64::from(b.x),
                f64::from(b.y),
                f64::from(b.w),
                f64::from(b.h),
            );
            let top = y - face::framing::HEADROOM * h;
            let bottom = y + h * (1.0 + face::framing::CHIN_ROOM);
            (x - 0.1 * w, top, x + 1.1 * w, bottom)
        }
        None => (0.2 * pw, 0.1 * ph, 0.8 * pw, 0.7 * ph),
    }
}

/// The picture for `seed`: a crop of the photo of the frame's aspect ratio, its size and position varied by the
/// seed, always holding the face whole (where the crop leaves the photo, the photo's mean colour fills in), scaled
/// to `out`. Blocking.
pub(crate) fn compose(photo: &FacePhoto, seed: u64, out: (u32, u32)) -> RgbImage {
    let u = draws(seed);
    let (pw, ph) = (f64::from(photo.rgb.width()), f64::from(photo.rgb.height()));
    let aspect = f64::from(out.0.max(1)) / f64::from(out.1.max(1));
    let (x0, y0, x1, y1) = keep_region(photo);
    let need = ((y1 - y0).max((x1 - x0) / aspect)) * 1.05;
    // From a close-up (the face about half the height) to a wider shot than the photo holds, never cutting it.
    let h = (ph.min(pw / aspect) * (0.6 + 0.55 * u[0])).max(need * 1.15);
    let w = h * aspect;
    let (cx, eye) = match photo.face {
        Some((b, eye)) => (f64::from(b.x) + f64::from(b.w) / 2.0, eye),
        None => (pw / 2.0, 0.4 * ph),
    };
    // Within [region's far edge − size, region's near edge]: the region stays inside the crop.
    let x = (cx - (0.4 + 0.2 * u[1]) * w).max(x1 - w).min(x0);
    let y = (eye - (0.28 + 0.1 * u[2]) * h).max(y1 - h).min(y0);
    let mut canvas = RgbImage::from_pixel(w.round() as u32, h.round() as u32, mean(&photo.rgb));
    imageops::overlay(
        &mut canvas,
        &photo.rgb,
        -(x.round() as i64),
        -(y.round() as i64),
    );
    imageops::resize(
        &canvas,
        out.0.max(1),
        out.1.max(1),
        imageops::FilterType::CatmullRom,
    )
}

/// [`compose`] checked by the engine (when loaded): exactly one face must show — a face-like pattern at some scale
/// could add a second — else the next variation of the seed is tried (the last one stands after four). Blocking.
pub(crate) fn checked_compose(
    photo: &FacePhoto,
    seed: u64,
    out: (u32, u32),
    engine: Option<&FaceEngine>,
) -> RgbImage {
    let mut picture = compose(photo, seed, out);
    let Some(engine) = engine else {
        return picture;
    };
    for attempt in 1..4u64 {
        if engine.analyse(&picture).len() == 1 {
            break;
        }
        picture = compose(
            photo,
            seed.wrapping_add(attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            out,
        );
    }
    picture
}

/// The mean colour of an image.
fn mean(img: &RgbImage) -> Rgb<u8> {
    let mut sum = [0u64; 3];
    for p in img.pixels() {
        for (s, v) in sum.iter_mut().zip(p.0) {
            *s += u64::from(v);
        }
    }
    let n = (u64::from(img.width()) * u64::from(img.height())).max(1);
    Rgb(sum.map(|s| (s / n) as u8))
}

/// The media name of a composed picture (the same photo, seed and size give the same name).
pub(crate) fn still_name(photo: &FacePhoto, seed: u64, out: (u32, u32), jpeg: bool) -> String {
    let fp = super::media::fingerprint(
        format!("{}\n{seed}\n{}x{}", photo.path.display(), out.0, out.1).as_bytes(),
    );
    let ext = if jpeg { "jpg" } else { "png" };
    format!("face-{}x{}-{fp:08x}.{ext}", out.0, out.1)
}

/// A picture encoded as PNG or JPEG.
pub(crate) fn encode(img: RgbImage, jpeg: bool) -> Result<Vec<u8>, String> {
    let mut buf = Cursor::new(Vec::new());
    let format = if jpeg {
        ImageOutputFormat::Jpeg(90)
    } else {
        ImageOutputFormat::Png
    };
    DynamicImage::ImageRgb8(img)
        .write_to(&mut buf, format)
        .map_err(|e| format!("encoding the face still: {e}"))?;
    Ok(buf.into_inner())
}

/// The SHA-256 (lower-case hex) of bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(face: Option<(FaceBox, f64)>) -> FacePhoto {
        FacePhoto {
            path: PathBuf::from("p.png"),
            rgb: RgbImage::from_fn(400, 500, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 9])),
            face,
        }
    }

    #[test]
    fn specs_parse_with_queries_and_hashes() {
        let f: LoraFace = "https://x.test/a.safetensors?sig=1=2=/p/a.png,/p/b.jpg"
            .parse()
            .unwrap();
        assert_eq!(f.lora, "https://x.test/a.safetensors?sig=1=2");
        assert_eq!(f.photos.len(), 2);
        let h: LoraFace = format!("{}=/p/a.png", "AB".repeat(32)).parse().unwrap();
        assert_eq!(h.lora, "ab".repeat(32));
        assert!(h.by_hash());
        assert!("no-photos=".parse::<LoraFace>().is_err());
        assert!("nothing".parse::<LoraFace>().is_err());
    }

    #[test]
    fn drift_picks_somebody_else_and_seeds_pick_among_photos() {
        let a = Arc::new(photo(None));
        let b = Arc::new(FacePhoto {
            path: PathBuf::from("b.png"),
            ..photo(None)
        });
        let book = FaceBook {
            people: vec![(LoraFace::new("https://a", vec![]), vec![Arc::clone(&a)])],
            others: vec![Arc::clone(&b)],
            hashes: HashMap::new(),
            engine: None,
        };
        let ask = |lora: &str, drift| PersonAsk {
            lora: lora.into(),
            seed: 3,
            drift,
        };
        assert!(Arc::ptr_eq(
            &book.pick(&ask("https://a", false)).unwrap(),
            &a
        ));
        assert!(Arc::ptr_eq(
            &book.pick(&ask("https://a", true)).unwrap(),
            &b
        ));
        assert!(book.pick(&ask("https://nobody", false)).is_none());
    }

    #[test]
    fn compositions_keep_the_face_and_differ_by_seed() {
        let b = FaceBox {
            x: 150,
            y: 120,
            w: 100,
            h: 100,
        };
        let p = photo(Some((b, 150.0)));
        let one = compose(&p, 1, (320, 180));
        let two = compose(&p, 2, (320, 180));
        assert_eq!(one.dimensions(), (320, 180));
        assert_ne!(one, two, "seeds vary the crop");
        assert_eq!(one, compose(&p, 1, (320, 180)), "a seed is deterministic");
    }
}
