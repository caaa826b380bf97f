#!/usr/bin/env bash
# Checks that bolt installs in both modes, each in a fresh venv under a temp dir:
#   (a) no cargo on PATH: `pip install .` succeeds, bolt imports, bolt.accel.ENABLED is False;
#       `python -m build` gives a pure py3-none-any wheel;
#   (b) cargo on PATH: `pip install .` and `pip install -e .` build the extension, ENABLED is True
#       and BOLT_NO_ACCEL=1 flips it to False; `python -m build` gives a cp311-abi3 platform wheel
#       holding bolt/_accel, and BOLT_NO_ACCEL=1 gives a pure wheel again.
# Works on a copy of the checkout (tracked and untracked, not ignored, files), so the checkout is
# left untouched. Each step is time-bounded (STEP_TIMEOUT seconds, default 600).
# Usage: scripts/check_install.sh [python]   (default: python3)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=$(command -v "${1:-python3}")
PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')  # past any pyenv shim
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
WORK=$(mktemp -d -t bolt-install-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
limited() { timeout --kill-after=10 "$STEP_TIMEOUT" "$@"; }

# pip_install LOGNAME PY ARGS...: a time-bounded pip install, its output kept in a log shown on failure.
pip_install() {
    local log=$WORK/$1.log py=$2; shift 2
    (cd "$WORK" && limited "$py" -m pip install "$@" >"$log" 2>&1) || { tail -40 "$log"; return 1; }
}

# PATH without any directory that holds cargo or rustc (rustup may live in ~/.cargo/bin,
# /usr/local/cargo/bin or elsewhere).
no_rust_path() {
    local dir out=()
    IFS=: read -ra dirs <<<"$PATH"
    for dir in "${dirs[@]}"; do
        [[ -n $dir && ( -x $dir/cargo || -x $dir/rustc ) ]] && continue
        out+=("$dir")
    done
    (IFS=:; echo "${out[*]}")
}
NO_RUST_PATH=$(no_rust_path)
command -v cargo >/dev/null || fail "cargo is not on PATH; mode (b) needs it"
PATH=$NO_RUST_PATH command -v cargo >/dev/null && fail "could not hide cargo from PATH"

SRC=$WORK/src
mkdir -p "$SRC"
(cd "$ROOT" && git ls-files --cached --others --exclude-standard -z | xargs -0 cp --parents -t "$SRC")
rm -f "$SRC"/bolt/_accel*.so  # never ship a stale local build

new_venv() {
    "$PYTHON" -m venv "$WORK/$1"
    echo "$WORK/$1/bin/python"
}

# expect_enabled PY True|False [env...]: bolt imports and ENABLED is as expected.
expect_enabled() {
    local py=$1 want=$2; shift 2
    local got
    got=$(cd "$WORK" && env "$@" "$py" -c 'import bolt, bolt.accel; print(bolt.accel.ENABLED)')
    [[ $got == "$want" ]] || fail "ENABLED is $got, expected $want (env: $*)"
    echo "ok: bolt imports, bolt.accel.ENABLED=$got${*:+ ($*)}"
}

# wheel_check PY OUTDIR PATTERN HAS_EXT [env...]: python -m build gives one wheel matching PATTERN.
wheel_check() {
    local py=$1 out=$2 pattern=$3 has_ext=$4; shift 4
    (cd "$WORK" && env "$@" timeout --kill-after=10 "$STEP_TIMEOUT" "$py" -m build -q --outdir "$out" "$SRC" >"$out.log" 2>&1) \
        || { tail -30 "$out.log"; fail "python -m build failed ($*)"; }
    local wheel
    wheel=$(ls "$out"/*.whl)
    [[ $(basename "$wheel") == $pattern ]] || fail "wheel $(basename "$wheel") does not match $pattern"
    local listing
    listing=$("$py" -m zipfile -l "$wheel")
    if [[ $listing == *bolt/_accel*.so* ]]; then
        [[ $has_ext == yes ]] || fail "$(basename "$wheel") should not carry the extension"
    else
        [[ $has_ext == no ]] || fail "$(basename "$wheel") lacks bolt/_accel"
    fi
    [[ $listing == *bolt/static/bolt/bolt.js* ]] || fail "$(basename "$wheel") lacks bolt/static/bolt/bolt.js"
    local sdist_listing
    sdist_listing=$(tar tzf "$out"/*.tar.gz)
    [[ $sdist_listing == */bolt/static/bolt/bolt.js* ]] || fail "the sdist lacks bolt/static/bolt/bolt.js"
    echo "ok: $(basename "$wheel") (extension: $has_ext, with bolt.js; sdist with bolt.js)"
}

say "(a) no cargo on PATH: pure-Python install"
PURE=$(new_venv pure)
PATH=$NO_RUST_PATH pip_install pure "$PURE" "$SRC" || fail "pip install . without cargo failed"
expect_enabled "$PURE" False
(cd "$WORK" && "$PURE" -c 'import importlib.util as u; assert u.find_spec("bolt._accel") is None') \
    || fail "an extension was installed without cargo"
pip_install pure-build "$PURE" build
wheel_check "$PURE" "$WORK/dist-pure" "bolt-*-py3-none-any.whl" no PATH="$NO_RUST_PATH"

say "(b) cargo on PATH: the extension is built"
ACCEL=$(new_venv accel)
pip_install accel "$ACCEL" "$SRC" || fail "pip install . with cargo failed"
expect_enabled "$ACCEL" True
expect_enabled "$ACCEL" False BOLT_NO_ACCEL=1
pip_install accel-build "$ACCEL" build
wheel_check "$ACCEL" "$WORK/dist-accel" "bolt-*-cp311-abi3-*.whl" yes
wheel_check "$ACCEL" "$WORK/dist-noaccel" "bolt-*-py3-none-any.whl" no BOLT_NO_ACCEL=1

say "(b) editable install with cargo"
"$ACCEL" -m pip uninstall -q -y bolt
pip_install editable "$ACCEL" -e "$SRC" || fail "pip install -e . with cargo failed"
expect_enabled "$ACCEL" True
expect_enabled "$ACCEL" False BOLT_NO_ACCEL=1

say "all install checks passed"
