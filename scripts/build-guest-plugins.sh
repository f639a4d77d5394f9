#!/usr/bin/env bash
# Builds the Python and JavaScript example plugins (plugins/python, plugins/js) into
# WebAssembly components, installing the toolchains they need.
#
#   scripts/build-guest-plugins.sh [python|js]...     (default: both; from any directory)
#   scripts/build-guest-plugins.sh --project python|js WORLD DIR OUT.wasm
#                    (a project made by `wasmeter new --lang python|js`; its build.sh)
#
# Components land in target/guest-plugins/<lang>/<name>.wasm (python: csv_collector,
# ewma, field_delta; js: csv-collector, ewma, field-delta). Toolchains:
#   python: componentize-py (pinned below) in a venv under ~/.cache/wasmeter/guest-py/<key>
#   js:     @bytecodealliance/componentize-js from plugins/js/package-lock.json (npm ci)
# Built components are cached in ~/.cache/wasmeter/guest-components/, keyed by a hash of
# their sources, the WIT and the tool version, so an unchanged plugin is not rebuilt
# (componentize-py takes ~10 s a plugin, componentize-js ~15-50 s).
#
# A toolchain that cannot be installed does not stop the script: it writes the reason
# to target/guest-plugins/<lang>/MISSING, which tests/guest_plugins.rs reports (and
# fails on under CI). The exit status is non-zero if any language failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/guest-plugins"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/wasmeter"
COMPONENTS="$CACHE/guest-components"
COMPONENTIZE_PY_VERSION=0.25.1
LANGS=("$@")
[ ${#LANGS[@]} -eq 0 ] && LANGS=(python js)
mkdir -p "$COMPONENTS"

say() { echo "build-guest-plugins: $*" >&2; }

# missing LANG MESSAGE: records why LANG's components cannot be built.
missing() {
    mkdir -p "$OUT/$1"
    echo "$2" > "$OUT/$1/MISSING"
    say "$1: $2"
    return 1
}

# sources_key TOOL_VERSION FILE...: a hash of the tool version and the files' contents.
sources_key() {
    local version="$1"
    shift
    (echo "$version"; cat "$@") | sha256sum | cut -c1-16
}

# cached NAME KEY OUT_FILE BUILD_COMMAND...: copies the cached component for KEY to
# OUT_FILE, or runs the build (which writes $BUILT) and caches its output.
cached() {
    local name="$1" key="$2" out="$3"
    shift 3
    local entry="$COMPONENTS/$name-$key.wasm"
    if [ ! -s "$entry" ]; then
        say "building $name"
        BUILT="$entry.tmp"
        rm -f "$BUILT"
        if ! "$@" >&2 || [ ! -s "$BUILT" ]; then
            rm -f "$BUILT"
            say "building $name failed"
            return 1
        fi
        mv "$BUILT" "$entry"
    fi
    cp "$entry" "$out"
    printf '  %-28s %9d bytes\n' "${out#"${ROOT_SHOWN:-$ROOT}"/}" "$(stat -c %s "$out")" >&2
}

# ---- Python: componentize-py ----
# Apt packages when python3 or its venv module is missing (as root, as in CI).
ensure_python() {
    if python3 -c 'import venv, ensurepip' 2>/dev/null; then return 0; fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing python3 and python3-venv"
        (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv) >&2
    fi
    python3 -c 'import venv, ensurepip' 2>/dev/null
}

# python_toolchain: sets VENV to a venv with componentize-py, installing it once;
# else sets WHY and fails.
python_toolchain() {
    ensure_python || { WHY="python3 with the venv module is missing (Debian: python3 python3-venv)"; return 1; }
    local key
    key="$( (python3 --version; echo "componentize-py==$COMPONENTIZE_PY_VERSION") | sha256sum | cut -c1-16)"
    VENV="$CACHE/guest-py/$key"
    if [ ! -e "$VENV/.complete" ]; then
        say "installing componentize-py $COMPONENTIZE_PY_VERSION into $VENV"
        rm -rf "$VENV"
        if ! (python3 -m venv "$VENV" \
            && "$VENV/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION" \
            && touch "$VENV/.complete") >&2; then
            WHY="componentize-py $COMPONENTIZE_PY_VERSION could not be installed from PyPI (pip install componentize-py==$COMPONENTIZE_PY_VERSION)"
            return 1
        fi
    fi
}

build_python() {
    local dir="$ROOT/plugins/python"
    rm -rf "$OUT/python" && mkdir -p "$OUT/python"
    python_toolchain || { missing python "$WHY"; return 1; }
    local venv="$VENV" key
    local ok=0 example world
    for example in csv_collector:collector ewma:metric field_delta:delta; do
        world="${example#*:}"
        example="${example%%:*}"
        key="$(cd "$dir" && sources_key "componentize-py $COMPONENTIZE_PY_VERSION $world" \
            wasmeter_guest/*.py "examples/$example/app.py" "$ROOT"/wit/*.wit)"
        build_py() {
            (cd "$dir" && "$venv/bin/componentize-py" -d "$ROOT/wit" -w "$world" componentize \
                -p . -p "examples/$example" app -o "$BUILT")
        }
        cached "py-$example" "$key" "$OUT/python/$example.wasm" build_py || ok=1
    done
    [ $ok = 0 ] || missing python "componentize-py failed to build a component (see the log above)"
}

# ---- JavaScript: componentize-js ----
# js_toolchain: installs componentize-js into plugins/js/node_modules (npm ci, once per
# lock file) and sets JS_VERSION; else sets WHY and fails.
js_toolchain() {
    local dir="$ROOT/plugins/js" lock_sum
    command -v npm >/dev/null || { WHY="node and npm are missing (Debian: nodejs npm)"; return 1; }
    lock_sum="$(sha256sum "$dir/package-lock.json" | cut -c1-64)"
    if [ "$(cat "$dir/node_modules/.wasmeter-lock" 2>/dev/null)" != "$lock_sum" ]; then
        say "installing componentize-js (npm ci in plugins/js)"
        if ! (cd "$dir" && npm ci --no-audit --no-fund && echo "$lock_sum" > node_modules/.wasmeter-lock) >&2; then
            WHY="npm ci in plugins/js failed: @bytecodealliance/componentize-js could not be installed"
            return 1
        fi
    fi
    JS_VERSION="$(cd "$dir" && node -p 'JSON.parse(require("fs").readFileSync("node_modules/@bytecodealliance/componentize-js/package.json")).version')"
}

build_js() {
    local dir="$ROOT/plugins/js"
    rm -rf "$OUT/js" && mkdir -p "$OUT/js"
    js_toolchain || { missing js "$WHY"; return 1; }
    local version="$JS_VERSION" ok=0 example world key
    for example in csv-collector:collector ewma:metric field-delta:delta; do
        world="${example#*:}"
        example="${example%%:*}"
        key="$(cd "$dir" && sources_key "componentize-js $version $world" \
            wasmeter-guest/*.js "examples/$example/app.js" "$ROOT"/wit/*.wit)"
        # http and fetch-event would import wasi:http, which the host does not link.
        build_js_one() {
            (cd "$dir" && node_modules/.bin/componentize-js "examples/$example/app.js" \
                --wit "$ROOT/wit" --world-name "$world" --disable http fetch-event -o "$BUILT")
        }
        cached "js-$example" "$key" "$OUT/js/$example.wasm" build_js_one || ok=1
    done
    [ $ok = 0 ] || missing js "componentize-js failed to build a component (see the log above)"
}

# ---- A project of its own (`wasmeter new ... --lang python|js`) ----
# build_project LANG WORLD DIR OUT: builds DIR's app.py / app.js (with the SDK and WIT
# the project holds) into OUT, through the same toolchains and component cache.
# Exit status: 0 built, 3 the toolchain is missing (the reason on stderr), 1 failed.
build_project() {
    local lang="$1" world="$2" dir out key entry
    dir="$(cd "$3" && pwd)" || { say "no project directory $3"; return 1; }
    case "$4" in /*) out="$4" ;; *) out="$dir/$4" ;; esac
    case "$world" in collector|delta|metric) ;; *) say "unknown world \`$world\` (collector, delta or metric)"; return 1 ;; esac
    local app=app.py
    [ "$lang" = js ] && app=app.js
    [ -f "$dir/$app" ] || { say "$dir has no $app (a project of \`wasmeter new --lang $lang\`)"; return 1; }
    [ -d "$dir/wit" ] || { say "$dir has no wit/ (the plugin contract, copied by \`wasmeter new\`)"; return 1; }
    # The project's sources and WIT, by path and content: what the component is built from.
    local files=()
    case "$lang" in
        python) mapfile -t files < <(cd "$dir" && find . -path ./__pycache__ -prune -o \( -name '*.py' -o -name '*.wit' \) -type f -print | LC_ALL=C sort) ;;
        js) mapfile -t files < <(cd "$dir" && find . -path ./node_modules -prune -o \( -name '*.js' -o -name '*.wit' \) -type f -print | LC_ALL=C sort) ;;
        *) say "unknown language \`$lang\` (python or js)"; return 1 ;;
    esac
    case "$lang" in
        python)
            python_toolchain || { say "cannot build $dir: $WHY"; return 3; }
            key="$(cd "$dir" && (echo "componentize-py $COMPONENTIZE_PY_VERSION $world"; printf '%s\n' "${files[@]}"; cat "${files[@]}") | sha256sum | cut -c1-16)"
            build_one() {
                (cd "$dir" && "$VENV/bin/componentize-py" -d wit -w "$world" componentize -p . app -o "$BUILT")
            }
            ;;
        js)
            js_toolchain || { say "cannot build $dir: $WHY"; return 3; }
            key="$(cd "$dir" && (echo "componentize-js $JS_VERSION $world"; printf '%s\n' "${files[@]}"; cat "${files[@]}") | sha256sum | cut -c1-16)"
            # componentize-js reads modules only below its working directory: the
            # project holds its SDK (wasmeter-guest/) for that reason.
            build_one() {
                (cd "$dir" && "$ROOT/plugins/js/node_modules/.bin/componentize-js" app.js \
                    --wit wit --world-name "$world" --disable http fetch-event -o "$BUILT")
            }
            ;;
    esac
    ROOT_SHOWN="$dir" cached "project-$lang-$world" "$key" "$out" build_one
}

if [ "${1:-}" = --project ]; then
    [ $# -eq 5 ] || { say "usage: $0 --project python|js collector|delta|metric DIR OUT.wasm"; exit 2; }
    build_project "$2" "$3" "$4" "$5"
    exit $?
fi

status=0
for lang in "${LANGS[@]}"; do
    case "$lang" in
        python) build_python || status=1 ;;
        js) build_js || status=1 ;;
        *) say "unknown language \`$lang\` (python or js)"; status=2 ;;
    esac
done
exit $status
