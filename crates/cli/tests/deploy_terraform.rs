//! The Terraform modules under deploy/terraform/{aws,azure,gcp}, judged
//! without terraform (no registry we reach ships it): checkov must find no
//! failed check (a skipped one is skipped inline in the .tf with its
//! reason), and tests/deploy/terraform_properties.py, which parses every
//! .tf file with python-hcl2, must find every property of issue 15:
//! versioning, a customer-managed key with rotation, public access blocked,
//! TLS only, the lifecycle days, an optional object lock, access logging,
//! and Bulwark's identity limited to its bucket and prefix. scripts/test.sh
//! installs both tools (ensure_checkov, ensure_python_hcl2).

use std::path::Path;
use std::process::Output;

mod common;
use common::{copy_tree, run_tool, source_root, text, tool};

/// `checkov` over one module, offline: no download of the vendor's
/// policies or guidelines, no look for a newer version.
fn checkov(module: &Path) -> Output {
    let mut args = vec!["-d", module.to_str().unwrap()];
    args.extend([
        "--framework",
        "terraform",
        "--compact",
        "--quiet",
        "--skip-download",
    ]);
    run_tool(
        &tool("BULWARK_TEST_CHECKOV", "checkov"),
        &args,
        &source_root(),
        &[("CKV_SKIP_PACKAGE_UPDATE_CHECK", "true")],
    )
}

/// (passed, failed, skipped) from checkov's summary line.
fn counts(output: &str) -> Option<(u32, u32, u32)> {
    let line = output.lines().find(|l| l.starts_with("Passed checks: "))?;
    let mut numbers = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().ok());
    Some((numbers.next()??, numbers.next()??, numbers.next()??))
}

fn check_module(name: &str) {
    let out = checkov(&source_root().join("deploy/terraform").join(name));
    let report = text(&out);
    let (passed, failed, _skipped) = counts(&report).unwrap_or_else(|| {
        panic!("checkov printed no summary for deploy/terraform/{name}:\n{report}")
    });
    assert!(
        out.status.success() && failed == 0,
        "checkov: {failed} failed checks in deploy/terraform/{name} (fix them, or skip one \
         inline with `#checkov:skip=CKV_...:reason`):\n{report}"
    );
    // A module checkov could not parse is skipped with a warning, not failed.
    assert!(
        passed > 0,
        "checkov checked nothing in deploy/terraform/{name}:\n{report}"
    );
}

#[test]
fn checkov_passes_aws() {
    check_module("aws");
}

#[test]
fn checkov_passes_azure() {
    check_module("azure");
}

#[test]
fn checkov_passes_gcp() {
    check_module("gcp");
}

fn properties(terraform_dir: &Path) -> Output {
    run_tool(
        "python3".as_ref(),
        &[
            "tests/deploy/terraform_properties.py",
            terraform_dir.to_str().unwrap(),
        ],
        &source_root(),
        &[],
    )
}

#[test]
fn terraform_modules_have_the_required_properties() {
    let out = properties(&source_root().join("deploy/terraform"));
    assert!(
        out.status.success(),
        "terraform properties broken:\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains("terraform properties hold in aws, azure, gcp"),
        "{}",
        text(&out)
    );
}

/// The properties script fails, naming module, file and property, when
/// one thing in a copy of the modules is broken: `check(file, from, to,
/// expected)` replaces the one occurrence of `from` in `file`.
#[test]
fn properties_script_names_each_broken_property() {
    let original = source_root().join("deploy/terraform");
    let dir = tempfile::tempdir().unwrap();
    let check = |file: &str, from: &str, to: &str, expected: &str| {
        let copy = dir.path().join("terraform");
        let _ = std::fs::remove_dir_all(&copy);
        copy_tree(&original, &copy);
        let path = copy.join(file);
        let source = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            source.matches(from).count(),
            1,
            "{file}: the case expects {from:?} exactly once"
        );
        std::fs::write(&path, source.replace(from, to)).unwrap();
        let out = properties(&copy);
        let report = text(&out);
        assert!(
            !out.status.success() && report.contains(expected),
            "{file}: {from:?} -> {to:?} should fail with {expected:?}, got:\n{report}"
        );
    };
    check(
        "aws/kms.tf",
        "enable_key_rotation     = true",
        "enable_key_rotation     = false",
        "aws: kms.tf: key rotation",
    );
    check(
        "aws/iam.tf",
        r#"resources = ["${aws_s3_bucket.repository.arn}/${var.prefix}/*"]"#,
        r#"resources = ["*"]"#,
        "aws: iam.tf: least privilege",
    );
    check(
        "aws/iam.tf",
        r#"["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]"#,
        r#"["s3:DeleteObject", "s3:GetObject", "s3:PutObject", "s3:*"]"#,
        "aws: iam.tf: least privilege",
    );
    check(
        "aws/main.tf",
        r#"values   = ["false"]"#,
        r#"values   = ["true"]"#,
        "aws: main.tf: TLS only",
    );
    check(
        "aws/logging.tf",
        "target_bucket = aws_s3_bucket.logs.id",
        "target_bucket = aws_s3_bucket.repository.id",
        "aws: logging.tf: access logging",
    );
    check(
        "aws/main.tf",
        "#checkov:skip=CKV2_AWS_62:nothing consumes bucket event notifications",
        "#checkov:skip=CKV2_AWS_62\n#",
        "aws: main.tf: checkov skips",
    );
    check(
        "azure/main.tf",
        "versioning_enabled = true",
        "versioning_enabled = false",
        "azure: main.tf: versioning",
    );
    check(
        "azure/access.tf",
        "    list   = true",
        "    list   = true\n    tag    = true",
        "azure: access.tf: least privilege",
    );
    check(
        "gcp/main.tf",
        "age                   = var.archive_after_days",
        "age                   = 90",
        "gcp: main.tf: lifecycle",
    );
    check(
        "gcp/main.tf",
        r#"public_access_prevention    = "enforced""#,
        r#"public_access_prevention    = "inherited""#,
        "gcp: main.tf: public access blocked",
    );
    check(
        "gcp/kms.tf",
        r#""roles/cloudkms.cryptoKeyEncrypterDecrypter""#,
        r#""roles/cloudkms.viewer""#,
        "gcp: kms.tf: customer-managed key",
    );
    check(
        "gcp/iam.tf",
        "    \"storage.objects.list\",\n",
        "    \"storage.objects.list\",\n    \"storage.buckets.delete\",\n",
        "gcp: iam.tf: least privilege",
    );
}
