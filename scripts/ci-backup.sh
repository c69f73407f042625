#!/usr/bin/env bash
# The steps of .github/workflows/backup.yml. They live here rather than
# inline in the workflow so that shellcheck reads them and the test suite
# runs them (crates/cli/tests/deploy_assets.rs) against a real repository.
#
#   scripts/ci-backup.sh init|backup|restore|verify|drill
#   scripts/ci-backup.sh notify success|failure|cancelled OPERATION
#
# Environment (the workflow maps its secrets and inputs onto these):
#   BULWARK              the binary [default: bulwark on PATH]
#   BULWARK_REPOSITORY   the repository (s3:..., azure:..., gs:... or a path)
#   BULWARK_PASSWORD     its password; the cloud's own variables (AWS_*,
#                        AZURE_ACCOUNT_*, GOOGLE_APPLICATION_CREDENTIALS) as
#                        Bulwark reads them
#   BACKUP_SOURCE        backup, drill: a path, or `git` for the git
#                        repository in the working directory (HEAD's tree);
#                        aws|azure|gcp (the values our users' workflow took)
#                        mean `git` and check the repository is on that cloud
#                        [default: git]
#   FILENAME             restore: a snapshot id, `latest` or an archive name
#                        (app-backup-20231115_030000.tar.gz); drill: latest,
#                        older-than:AGE, random or an id [default: latest]
#   OUTPUT_DIR           where each command's --json output goes, with
#                        summary.txt, a one-line result [default: bulwark-output]
#   WORK_DIR             scratch space for restores and drills [default: a
#                        new temporary directory, removed at exit]
#   VERIFY_SUBSET        verify: the share of packs read [default: 5%]
#   DRILL_RTO_TARGET, DRILL_RPO_TARGET   drill: targets [default: 1h, 8d:
#                        a weekly backup with a day of slack]
#   BACKUP_HOST          the host name snapshots record [default:
#                        github-actions]: runners have a new name every run,
#                        and the parent snapshot is found by host and paths
#   SLACK_WEBHOOK_URL    notify: Slack incoming webhook; empty skips
#   RUN_URL              notify: link to this run
set -euo pipefail

BULWARK="${BULWARK:-bulwark}"
OUTPUT_DIR="${OUTPUT_DIR:-bulwark-output}"
log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'ci-backup: %s\n' "$*" >&2
    exit 2
}

usage() {
    die "usage: ci-backup.sh init|backup|restore|verify|drill, or ci-backup.sh notify success|failure|cancelled OPERATION"
}

require_repository() {
    [ -n "${BULWARK_REPOSITORY:-}" ] || die "BULWARK_REPOSITORY is empty: set the repository secret (scripts/setup-gh-secrets.sh does)"
    [ -n "${BULWARK_PASSWORD:-}" ] || die "BULWARK_PASSWORD is empty: set the password secret (scripts/setup-gh-secrets.sh does)"
    command -v "$BULWARK" >/dev/null || die "$BULWARK not found: install Bulwark first (cargo install --path crates/cli --locked)"
    command -v jq >/dev/null || die "jq not found: it reads Bulwark's --json output"
}

work_dir() {
    if [ -z "${WORK_DIR:-}" ]; then
        WORK_DIR=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/bulwark-ci.XXXXXX")
        # Restored files are the backup in clear: never leave them behind.
        trap 'rm -rf "$WORK_DIR"' EXIT
    fi
    mkdir -p "$WORK_DIR"
    chmod 0700 "$WORK_DIR"
}

# Runs `bulwark --json ARGS...` with its stdout in OUTPUT_DIR/NAME.ndjson
# (progress lines, then the summary object), and shows the summary.
run_json() {
    local name=$1
    shift
    local out="$OUTPUT_DIR/$name.ndjson" status=0
    log "bulwark $*"
    "$BULWARK" --json "$@" >"$out" || status=$?
    # The last line is the summary (or the whole document for drills).
    tail -n 1 "$out" | jq -c . >&2 2>/dev/null || true
    return "$status"
}

# The path and flags `backup` takes for BACKUP_SOURCE.
source_args() {
    local source="${BACKUP_SOURCE:-git}" scheme
    case "$source" in
    aws | azure | gcp)
        case "$source" in
        aws) scheme=s3 ;;
        azure) scheme=azure ;;
        gcp) scheme=gs ;;
        esac
        case "$BULWARK_REPOSITORY" in
        "$scheme":*) ;;
        *) die "backup_source $source needs a $scheme: repository, but BULWARK_REPOSITORY is not one" ;;
        esac
        source=git
        ;;
    esac
    if [ "$source" = git ]; then
        git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
            die "backup_source git: $(pwd) is not a git checkout"
        SOURCE_ARGS=(--git "$(git rev-parse --show-toplevel)")
    else
        [ -e "$source" ] || die "backup_source $source does not exist (in $(pwd))"
        SOURCE_ARGS=("$(realpath "$source")")
    fi
}

summary() {
    printf '%s\n' "$*" >"$OUTPUT_DIR/summary.txt"
    log "$*"
}

op_init() {
    run_json init init -r "$BULWARK_REPOSITORY"
    summary "initialised the repository"
}

op_backup() {
    source_args
    local tags=(--tag ci)
    [ -z "${GITHUB_RUN_ID:-}" ] || tags+=(--tag "github-run-$GITHUB_RUN_ID")
    run_json backup backup -r "$BULWARK_REPOSITORY" --host "${BACKUP_HOST:-github-actions}" \
        "${tags[@]}" "${SOURCE_ARGS[@]}"
    summary "$(jq -r 'select(.message_type == "summary")
        | "snapshot \(.snapshot_id[0:8]): \(.files_new) new, \(.files_changed) changed, \(.files_unmodified) unmodified files, \(.data_added) bytes added"' \
        "$OUTPUT_DIR/backup.ndjson")"
}

op_restore() {
    work_dir
    local snapshot="${FILENAME:-latest}"
    [ -n "$snapshot" ] || snapshot=latest
    # Restored into scratch space and re-read against the snapshot: the run
    # proves the backup restores whole. The files are not published: an
    # artifact is readable by everyone who can read the repository.
    run_json restore restore -r "$BULWARK_REPOSITORY" "$snapshot" \
        --target "$WORK_DIR/restore" --verify
    summary "$(jq -r 'select(.message_type == "summary")
        | "restored snapshot \(.snapshot_id[0:8]): \(.files) files, \(.bytes) bytes, \(.verified) verified"' \
        "$OUTPUT_DIR/restore.ndjson")"
}

op_verify() {
    run_json snapshots snapshots -r "$BULWARK_REPOSITORY"
    run_json check check -r "$BULWARK_REPOSITORY" --read-data-subset "${VERIFY_SUBSET:-5%}"
    summary "$(jq -r --slurpfile snaps "$OUTPUT_DIR/snapshots.ndjson" 'select(.message_type == "summary")
        | "check passed: \(.snapshots) snapshots, \(.packs_read) of \(.packs) packs read; newest \($snaps[0] | max_by(.time) | .time // "none")"' \
        "$OUTPUT_DIR/check.ndjson")"
}

# A TOML basic string.
toml_string() {
    local s=$1
    case "$s" in
    *[[:cntrl:]]*) die "a value for the drill's config has a control character" ;;
    esac
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

op_drill() {
    work_dir
    source_args
    # The drill is a real `bulwark drill run`: restore to a sandbox, verify
    # every file, RTO and RPO against their targets, a report in the data
    # directory's logs/. Its state is a fresh SQLite file in WORK_DIR.
    local path="${SOURCE_ARGS[-1]}" config="$WORK_DIR/bulwark.toml" data="$WORK_DIR/data"
    (
        umask 077
        cat >"$config" <<EOF
[[backup]]
name = "ci"
repo = $(toml_string "$BULWARK_REPOSITORY")
paths = [$(toml_string "$path")]

[[drill]]
name = "ci"
backup = "ci"
rto_target = $(toml_string "${DRILL_RTO_TARGET:-1h}")
rpo_target = $(toml_string "${DRILL_RPO_TARGET:-8d}")
timeout = "6h"
EOF
    )
    local status=0
    run_json drill --config "$config" --data-dir "$data" drill run ci \
        --snapshot "${FILENAME:-latest}" || status=$?
    if compgen -G "$data/logs/dr_report_*.json" >/dev/null; then
        cp "$data"/logs/dr_report_*.json "$OUTPUT_DIR/"
    fi
    [ "$status" -eq 0 ] || {
        summary "$(jq -r '"drill FAILED at \(.failed_step // "start")"' "$OUTPUT_DIR/drill.ndjson" 2>/dev/null ||
            echo "drill could not run")"
        return "$status"
    }
    summary "$(jq -r '"drill passed: snapshot \(.snapshot[0:8]), RTO \(.rto_seconds | floor)s (target \(.rto_target_seconds)s), RPO \(.rpo_seconds | floor)s (target \(.rpo_target_seconds)s)"' \
        "$OUTPUT_DIR/drill.ndjson")"
}

notify() {
    local status=$1 operation=$2
    if [ -z "${SLACK_WEBHOOK_URL:-}" ]; then
        log "SLACK_WEBHOOK_URL is not set: no Slack message"
        return 0
    fi
    command -v curl >/dev/null || die "curl not found: it posts the Slack message"
    local icon detail="" payload
    case "$status" in
    success) icon=":white_check_mark:" ;;
    failure) icon=":x:" ;;
    cancelled) icon=":warning:" ;;
    *) die "notify: status must be success, failure or cancelled, not \"$status\"" ;;
    esac
    [ ! -s "$OUTPUT_DIR/summary.txt" ] || detail=$(head -c 500 "$OUTPUT_DIR/summary.txt")
    payload=$(jq -n --arg icon "$icon" --arg status "$status" --arg op "$operation" \
        --arg repo "${GITHUB_REPOSITORY:-}" --arg url "${RUN_URL:-}" --arg detail "$detail" '
        ($icon + " Bulwark " + $op + " " + $status
            + (if $repo != "" then " in " + $repo else "" end)
            + (if $url != "" then " (<" + $url + "|run>)" else "" end)
            + (if $detail != "" then "\n" + $detail else "" end)) as $text
        | {text: $text}')
    # The webhook URL is a secret: it reaches curl through its config on
    # stdin, never its arguments (which every process on the machine sees).
    local body
    body=$(mktemp)
    printf '%s' "$payload" >"$body"
    if printf 'url = "%s"\n' "$SLACK_WEBHOOK_URL" |
        curl --silent --show-error --fail --max-time 20 --retry 3 \
            -H 'Content-Type: application/json' --data-binary "@$body" --config - >/dev/null; then
        log "Slack notified ($status)"
    else
        # The run's own status is the record; a dead webhook is worth a
        # warning on the run, not a second failure.
        echo "::warning::the Slack notification failed"
    fi
    rm -f "$body"
}

# A workflow passes every secret, set or not: an empty credential variable
# would be read as a value (an empty key) instead of as absent.
for var in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_REGION \
    AZURE_ACCOUNT_NAME AZURE_ACCOUNT_KEY AZURE_ACCOUNT_SAS AZURE_STORAGE_CONNECTION_STRING \
    GOOGLE_APPLICATION_CREDENTIALS; do
    [ -n "${!var:-}" ] || unset "$var"
done

[ "$#" -ge 1 ] || usage
mkdir -p "$OUTPUT_DIR"
case "$1" in
init | backup | restore | verify | drill)
    [ "$#" -eq 1 ] || usage
    require_repository
    "op_$1"
    ;;
notify)
    [ "$#" -eq 3 ] || usage
    notify "$2" "$3"
    ;;
*) usage ;;
esac
