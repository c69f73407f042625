#!/usr/bin/env bash
# Copies what `terraform apply` made in deploy/terraform/CLOUD into the
# GitHub repository's Actions secrets that .github/workflows/backup.yml
# reads, with the gh CLI. Values go to gh on its standard input, never as
# arguments (which every process on the machine can read) and never to the
# terminal; --dry-run prints only names.
#
#   scripts/setup-gh-secrets.sh [options] aws|azure|gcp
#
#   --dir DIR                  the Terraform module [default: deploy/terraform/CLOUD]
#   --repo OWNER/NAME          the GitHub repository [default: gh's choice
#                              for the current checkout]
#   --password-file FILE       BULWARK_PASSWORD, the repository password
#                              [default: asked twice on the terminal]
#   --slack-webhook-file FILE  also set SLACK_WEBHOOK_URL (or export
#                              SLACK_WEBHOOK_URL before running this)
#   --dry-run                  print the names it would set; set nothing
#
# Secrets: BULWARK_REPOSITORY and BULWARK_PASSWORD; aws: AWS_REGION and
# AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY when the module made an access
# key, else AWS_ROLE_ARN (GitHub OIDC); azure: AZURE_ACCOUNT_NAME and
# AZURE_ACCOUNT_SAS; gcp: GOOGLE_APPLICATION_CREDENTIALS_JSON.
set -euo pipefail

die() {
    printf 'setup-gh-secrets: %s\n' "$*" >&2
    exit 2
}
usage() {
    die "usage: setup-gh-secrets.sh [--dir DIR] [--repo OWNER/NAME] [--password-file FILE] [--slack-webhook-file FILE] [--dry-run] aws|azure|gcp"
}
need() {
    command -v "$1" >/dev/null || die "$1 is not installed: $2"
}

cloud="" dir="" repo="" password_file="" slack_file="" dry_run=0
while [ "$#" -gt 0 ]; do
    case "$1" in
    --dir | --repo | --password-file | --slack-webhook-file)
        if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi
        case "$1" in
        --dir) dir=$2 ;;
        --repo) repo=$2 ;;
        --password-file) password_file=$2 ;;
        --slack-webhook-file) slack_file=$2 ;;
        esac
        shift 2
        ;;
    --dry-run)
        dry_run=1
        shift
        ;;
    -h | --help) usage ;;
    aws | azure | gcp)
        [ -z "$cloud" ] || die "name one cloud, not $cloud and $1"
        cloud=$1
        shift
        ;;
    *) die "unknown argument \"$1\" (expected aws, azure or gcp, or an option)" ;;
    esac
done
[ -n "$cloud" ] || usage
if [ -z "$dir" ]; then
    dir="$(cd "$(dirname "$0")/.." && pwd)/deploy/terraform/$cloud"
fi
[ -d "$dir" ] || die "no Terraform module at $dir"

need terraform "it reads the module's outputs (terraform output -json)"
need jq "it reads terraform's JSON"
[ "$dry_run" -eq 1 ] || need gh "it sets the secrets (https://cli.github.com; then gh auth login)"

outputs=$(terraform -chdir="$dir" output -json) ||
    die "terraform output failed in $dir: run terraform init and terraform apply there first"
if [ -z "$outputs" ] || [ "$outputs" = "{}" ]; then
    die "terraform has no outputs in $dir: run terraform apply there first"
fi

# The value of output NAME as text; `required` dies when it is absent or
# null, `optional` prints nothing then.
output() {
    local name=$1 mode=$2 state
    state=$(jq -r --arg n "$name" \
        'if has($n) | not then "absent" elif .[$n].value == null then "null" else "set" end' \
        <<<"$outputs")
    if [ "$state" != set ]; then
        [ "$mode" = optional ] && return 0
        die "terraform output \"$name\" is $state in $dir: apply the current module (terraform apply) so it has it"
    fi
    jq -j --arg n "$name" '.[$n].value | if type == "string" then . else tojson end' <<<"$outputs"
}

names=()
values=()
add() {
    [ -n "$2" ] || die "the value for $1 is empty"
    names+=("$1")
    values+=("$2")
}
# Secret NAME from terraform output OUTPUT. (An assignment, so that a
# failing `output` stops the script: a substitution inside a command's
# arguments would not.)
add_output() {
    local value
    value=$(output "$2" required)
    add "$1" "$value"
}

add_output BULWARK_REPOSITORY repository
case "$cloud" in
aws)
    add_output AWS_REGION region
    key_id=$(output access_key_id optional)
    if [ -n "$key_id" ]; then
        add AWS_ACCESS_KEY_ID "$key_id"
        add_output AWS_SECRET_ACCESS_KEY secret_access_key
    else
        # No stored key: the workflow assumes the role through GitHub's
        # OIDC token, which works once the module trusts this repository
        # (github_oidc_provider_arn and github_oidc_subjects).
        # (The module sets create_access_key = true for a stored key.)
        add_output AWS_ROLE_ARN role_arn
        printf 'note: no access key in the outputs: the workflow assumes the role through GitHub OIDC, so the module must trust this repository (github_oidc_provider_arn, github_oidc_subjects)\n' >&2
    fi
    ;;
azure)
    add_output AZURE_ACCOUNT_NAME storage_account_name
    add_output AZURE_ACCOUNT_SAS sas_token
    ;;
gcp)
    encoded=$(output service_account_key optional)
    # GitHub-hosted runners have no Google identity of their own: the
    # workflow needs the service account's JSON key.
    [ -n "$encoded" ] ||
        die "terraform output \"service_account_key\" is null in $dir: apply the module with create_key = true so the workflow has a key"
    key_json=$(base64 -d <<<"$encoded" 2>/dev/null) ||
        die "terraform output \"service_account_key\" is not base64"
    jq -e 'type == "object" and has("private_key")' <<<"$key_json" >/dev/null 2>&1 ||
        die "terraform output \"service_account_key\" is not a service account's JSON key"
    add GOOGLE_APPLICATION_CREDENTIALS_JSON "$key_json"
    ;;
esac

# The repository password: from a file, or asked on the terminal. Never an
# argument, and Bulwark's repository is unreadable without it: keep it in
# your password manager too, or the backups cannot be restored elsewhere.
if [ -n "$password_file" ]; then
    [ -r "$password_file" ] || die "cannot read the password file $password_file"
    password=$(<"$password_file")
    # restic and Bulwark trim surrounding white space from password files.
    password=${password#"${password%%[![:space:]]*}"}
    password=${password%"${password##*[![:space:]]}"}
    [ -n "$password" ] || die "the password file $password_file is empty"
    add BULWARK_PASSWORD "$password"
elif [ "$dry_run" -eq 1 ]; then
    names+=(BULWARK_PASSWORD)
    values+=("")
elif [ -t 0 ]; then
    read -rsp "Repository password (BULWARK_PASSWORD): " password
    echo >&2
    read -rsp "Again: " again
    echo >&2
    [ "$password" = "$again" ] || die "the passwords differ"
    [ -n "$password" ] || die "the password is empty"
    add BULWARK_PASSWORD "$password"
else
    die "no terminal to ask for the repository password: give --password-file FILE"
fi

if [ -n "$slack_file" ]; then
    [ -r "$slack_file" ] || die "cannot read the Slack webhook file $slack_file"
    webhook=$(tr -d '[:space:]' <"$slack_file")
    add SLACK_WEBHOOK_URL "$webhook"
elif [ -n "${SLACK_WEBHOOK_URL:-}" ]; then
    add SLACK_WEBHOOK_URL "$SLACK_WEBHOOK_URL"
fi

gh_repo=()
[ -z "$repo" ] || gh_repo=(--repo "$repo")
for i in "${!names[@]}"; do
    if [ "$dry_run" -eq 1 ]; then
        printf 'would set %s\n' "${names[$i]}"
        continue
    fi
    # gh reads the value from standard input when --body is absent (and
    # stdin is not a terminal); `--body -` would store a literal "-".
    printf '%s' "${values[$i]}" | gh secret set "${names[$i]}" "${gh_repo[@]}" ||
        die "gh could not set ${names[$i]} (is gh logged in? gh auth status)"
    printf 'set %s\n' "${names[$i]}"
done
