#!/usr/bin/env python3
"""The security properties of deploy/terraform/{aws,azure,gcp}, read from the
.tf files themselves (python-hcl2), since terraform cannot run here:
versioning, a customer-managed key that rotates, public access blocked,
TLS-only access, lifecycle days as variable defaults wired into the rules,
an optional object lock, access logging, and Bulwark's identity limited to
exactly the object permissions its backend uses on its bucket and prefix.

    python3 tests/deploy/terraform_properties.py [deploy/terraform]

Prints one line per broken property (module, file, property, what is
wrong) and exits 1; exits 0 when every property holds.
"""

import pathlib
import re
import sys

try:
    import hcl2
    from hcl2 import SerializationOptions
except ImportError:
    sys.exit("python-hcl2 8 or newer is missing: scripts/test.sh installs it (pip install 'python-hcl2>=8,<9')")

OPTIONS = SerializationOptions(
    explicit_blocks=False, strip_string_quotes=True, with_comments=False
)

# The lifecycle the issue asks for, as variable defaults.
LIFECYCLE_DEFAULTS = {
    "infrequent_access_after_days": 30,
    "archive_after_days": 90,
    "noncurrent_version_expiration_days": 365,
}

# Output names other tools read with `terraform output -json`.
OUTPUTS = {
    "aws": {"repository", "region", "bucket_name", "kms_key_arn", "role_arn",
            "access_key_id", "secret_access_key"},
    "azure": {"repository", "storage_account_name", "container_name", "sas_token"},
    "gcp": {"repository", "bucket_name", "service_account_email", "service_account_key"},
}
SENSITIVE_OUTPUTS = {
    "aws": {"secret_access_key"},
    "azure": {"sas_token"},
    "gcp": {"service_account_key"},
}

# What Bulwark's backends request (crates/repo/src/backend/object/).
AWS_ACTIONS = {
    "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
    "s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration",
    "kms:Decrypt", "kms:GenerateDataKey",
}
AZURE_SAS_PERMISSIONS = {"read", "add", "create", "write", "delete", "list"}
GCP_PERMISSIONS = {
    "storage.objects.create", "storage.objects.delete",
    "storage.objects.get", "storage.objects.list",
}

failures = []


def expect(ok, module, file, prop, message):
    """Record a broken property; returns ok so checks can stop early."""
    if not ok:
        failures.append(f"{module.name}: {file}: {prop}: {message}")
    return ok


class Module:
    """Every block of one module's .tf files, each with the file it is in."""

    def __init__(self, path):
        self.path = path
        self.name = path.name
        self.resources = {}  # (type, name) -> (body, file)
        self.data = {}
        self.variables = {}  # name -> (body, file)
        self.outputs = {}
        self.locals = {}  # name -> value
        self.terraform = []  # (body, file)
        for tf in sorted(path.glob("*.tf")):
            try:
                doc = hcl2.loads(tf.read_text(), serialization_options=OPTIONS)
            except Exception as e:
                raise ValueError(f"{tf.name}: {e}") from e
            for kind, table in (("resource", self.resources), ("data", self.data)):
                for block in doc.get(kind, []):
                    for rtype, named in block.items():
                        for rname, body in named.items():
                            table[(rtype, rname)] = (body, tf.name)
            for kind, table in (("variable", self.variables), ("output", self.outputs)):
                for block in doc.get(kind, []):
                    for vname, body in block.items():
                        table[vname] = (body, tf.name)
            for block in doc.get("locals", []):
                self.locals.update(block)
            for block in doc.get("terraform", []):
                self.terraform.append((block, tf.name))

    def of_type(self, rtype, table=None):
        """[(name, body, file)] of every resource (or data source) of a type."""
        table = self.resources if table is None else table
        return [(n, b, f) for (t, n), (b, f) in table.items() if t == rtype]

    def one(self, rtype, name, prop, table=None):
        """The body and file of a block that must exist, else a failure."""
        table = self.resources if table is None else table
        kind = "resource" if table is self.resources else "data source"
        found = table.get((rtype, name))
        expect(found is not None, self, "*.tf", prop, f"no {kind} {rtype}.{name}")
        return found if found else (None, None)

    def resolve(self, value):
        """A value with `${local.NAME}` replaced by the local's value."""
        if isinstance(value, str):
            m = re.fullmatch(r"\$\{local\.(\w+)\}", value)
            if m and m.group(1) in self.locals:
                return self.resolve(self.locals[m.group(1)])
        return value


def blocks(body, key):
    """The nested blocks `key` of a body (always a list)."""
    value = (body or {}).get(key, [])
    return value if isinstance(value, list) else [value]


def first(body, key):
    found = blocks(body, key)
    return found[0] if found else {}


def var(name):
    return "${var.%s}" % name


def refers(value, address):
    """Whether an expression mentions a resource address (`aws_kms_key.x`)."""
    return isinstance(value, str) and re.search(re.escape(address) + r"\b", value) is not None


def dynamic(body, name):
    """The `dynamic "NAME"` block of a body, or None."""
    for block in blocks(body, "dynamic"):
        if name in block:
            return block[name]
    return None


# --- Properties every module has -------------------------------------------

def check_common(m):
    # A skipped checkov check says why, where it is skipped.
    for tf in sorted(m.path.glob("*.tf")):
        for number, line in enumerate(tf.read_text().splitlines(), 1):
            if "checkov:skip" in line:
                expect(re.search(r"#checkov:skip=CKV2?_[A-Z]+_\d+:\S.{19,}", line), m, tf.name,
                       "checkov skips", f"line {number} skips a check without a reason: {line.strip()}")

    pinned = {}
    for block, file in m.terraform:
        for providers in blocks(block, "required_providers"):
            for pname, spec in providers.items():
                pinned[pname] = (spec, file)
    expect(pinned, m, "versions.tf", "providers pinned", "no required_providers")
    for pname, (spec, file) in pinned.items():
        version = spec.get("version", "") if isinstance(spec, dict) else ""
        expect(re.fullmatch(r"~> \d+\.\d+", version), m, file, "providers pinned",
               f"{pname} is {version!r}, not pinned to a major version (~> N.M)")

    for vname, days in LIFECYCLE_DEFAULTS.items():
        body, file = m.variables.get(vname, ({}, "variables.tf"))
        expect(body.get("default") == days, m, file, "lifecycle defaults",
               f"variable {vname} defaults to {body.get('default')!r}, not {days}")

    for oname in sorted(OUTPUTS[m.name] - set(m.outputs)):
        expect(False, m, "outputs.tf", "outputs", f"output {oname} is missing")
    for oname in sorted(SENSITIVE_OUTPUTS[m.name]):
        body, file = m.outputs.get(oname, ({}, "outputs.tf"))
        expect(body.get("sensitive") is True, m, file, "outputs",
               f"output {oname} holds a secret but is not sensitive")

    readme = m.path / "README.md"
    if expect(readme.is_file(), m, "README.md", "docs", "missing"):
        text = readme.read_text()
        for oname in sorted(OUTPUTS[m.name]):
            expect(f"`{oname}`" in text, m, "README.md", "docs", f"does not explain output `{oname}`")

    example = m.path / "terraform.tfvars.example"
    if expect(example.is_file(), m, example.name, "tfvars example", "missing"):
        values = hcl2.loads(example.read_text(), serialization_options=OPTIONS)
        for vname in sorted(set(values) - set(m.variables)):
            expect(False, m, example.name, "tfvars example", f"sets {vname}, which is no variable")
        for vname, (body, file) in sorted(m.variables.items()):
            if "default" not in body:
                expect(vname in values, m, example.name, "tfvars example",
                       f"does not set required variable {vname}")


def check_optional_flag(m, vname, prop):
    """A bool variable that defaults to off."""
    body, file = m.variables.get(vname, (None, "variables.tf"))
    if expect(body is not None, m, file, prop, f"no variable {vname}"):
        expect(body.get("type") == "${bool}" or body.get("type") == "bool", m, file, prop,
               f"variable {vname} is not a bool")
        expect(body.get("default") is False, m, file, prop, f"variable {vname} is not off by default")


# --- AWS ---------------------------------------------------------------------

def check_aws(m):
    bucket = "aws_s3_bucket.repository"
    m.one("aws_s3_bucket", "repository", "bucket")

    def for_bucket(rtype, prop):
        """The one resource of a type that configures the repository bucket."""
        found = [(b, f) for _, b, f in m.of_type(rtype) if refers(b.get("bucket"), bucket)]
        expect(len(found) == 1, m, "*.tf", prop, f"{len(found)} {rtype} for {bucket}, want 1")
        return found[0] if found else ({}, None)

    body, file = for_bucket("aws_s3_bucket_versioning", "versioning")
    expect(first(body, "versioning_configuration").get("status") == "Enabled", m, file,
           "versioning", "status is not Enabled")

    key, key_file = m.one("aws_kms_key", "repository", "customer-managed key")
    if key:
        expect(key.get("enable_key_rotation") is True, m, key_file, "key rotation",
               "enable_key_rotation is not true")
    body, file = for_bucket("aws_s3_bucket_server_side_encryption_configuration", "customer-managed key")
    default = first(first(body, "rule"), "apply_server_side_encryption_by_default")
    expect(default.get("sse_algorithm") == "aws:kms", m, file, "customer-managed key",
           "default encryption is not aws:kms")
    expect(refers(default.get("kms_master_key_id"), "aws_kms_key.repository"), m, file,
           "customer-managed key", "default encryption does not use aws_kms_key.repository")

    # Every bucket, the log bucket too.
    for bname, _, _ in m.of_type("aws_s3_bucket"):
        found = [(b, f) for _, b, f in m.of_type("aws_s3_bucket_public_access_block")
                 if refers(b.get("bucket"), f"aws_s3_bucket.{bname}")]
        if expect(found, m, "*.tf", "public access blocked", f"aws_s3_bucket.{bname} has no public access block"):
            b, f = found[0]
            for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                         "restrict_public_buckets"):
                expect(b.get(flag) is True, m, f, "public access blocked", f"{flag} is not true for {bname}")

    # TLS only: the bucket policy denies every request without TLS.
    body, file = for_bucket("aws_s3_bucket_policy", "TLS only")
    m_doc = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", str(body.get("policy")))
    if expect(m_doc, m, file, "TLS only", "the bucket policy is not an aws_iam_policy_document"):
        doc, doc_file = m.one("aws_iam_policy_document", m_doc.group(1), "TLS only", m.data)
        denies = [s for s in blocks(doc, "statement") if s.get("effect") == "Deny"
                  and any(c.get("variable") == "aws:SecureTransport" and c.get("test") == "Bool"
                          and c.get("values") == ["false"] for c in blocks(s, "condition"))]
        if expect(denies, m, doc_file, "TLS only", "no Deny statement on aws:SecureTransport = false"):
            s = denies[0]
            expect(s.get("actions") == ["s3:*"], m, doc_file, "TLS only", "the deny does not cover s3:*")
            expect(set(s.get("resources", [])) == {f"${{{bucket}.arn}}", f"${{{bucket}.arn}}/*"},
                   m, doc_file, "TLS only", "the deny does not cover the bucket and its objects")
            expect(first(s, "principals").get("identifiers") == ["*"], m, doc_file, "TLS only",
                   "the deny is not for every principal")

    # Lifecycle: the variables, wired into the rules.
    body, file = for_bucket("aws_s3_bucket_lifecycle_configuration", "lifecycle")
    rules = [r for r in blocks(body, "rule") if r.get("status") == "Enabled"]
    transitions = {t.get("days"): t.get("storage_class") for r in rules for t in blocks(r, "transition")}
    expect(transitions.get(var("infrequent_access_after_days")) == var("infrequent_access_storage_class"),
           m, file, "lifecycle", "no transition after var.infrequent_access_after_days to var.infrequent_access_storage_class")
    expect(transitions.get(var("archive_after_days")) == var("archive_storage_class"),
           m, file, "lifecycle", "no transition after var.archive_after_days to var.archive_storage_class")
    noncurrent = [n.get("noncurrent_days") for r in rules for n in blocks(r, "noncurrent_version_expiration")]
    expect(var("noncurrent_version_expiration_days") in noncurrent, m, file, "lifecycle",
           "noncurrent versions do not expire after var.noncurrent_version_expiration_days")
    for name in ("infrequent_access_storage_class", "archive_storage_class"):
        vbody, vfile = m.variables.get(name, ({}, "variables.tf"))
        expect(vbody.get("default") in ("STANDARD_IA", "GLACIER_IR"), m, vfile, "lifecycle",
               f"{name} defaults to {vbody.get('default')!r}, not a class Bulwark reads without a restore")

    # Object Lock: off by default, on the bucket and its default retention.
    check_optional_flag(m, "object_lock_enabled", "object lock")
    b, f = m.resources.get(("aws_s3_bucket", "repository"), ({}, "main.tf"))
    expect(b.get("object_lock_enabled") == var("object_lock_enabled"), m, f, "object lock",
           "the bucket's object_lock_enabled is not var.object_lock_enabled")
    locks = [(b, f) for _, b, f in m.of_type("aws_s3_bucket_object_lock_configuration")]
    if expect(locks, m, "*.tf", "object lock", "no aws_s3_bucket_object_lock_configuration"):
        b, f = locks[0]
        expect(b.get("count") == "${var.object_lock_enabled ? 1 : 0}", m, f, "object lock",
               "the lock configuration is not made exactly when var.object_lock_enabled")
        expect(first(first(b, "rule"), "default_retention"), m, f, "object lock", "no default retention")

    # Access logging into another bucket.
    body, file = for_bucket("aws_s3_bucket_logging", "access logging")
    target = str(body.get("target_bucket", ""))
    expect(refers(target, "aws_s3_bucket") and not refers(target, bucket), m, file, "access logging",
           "server access logs do not go to a separate log bucket")

    check_aws_identity(m, bucket)


def check_aws_identity(m, bucket):
    prop = "least privilege"
    policies = m.of_type("aws_iam_policy")
    if not expect(len(policies) == 1, m, "iam.tf", prop, f"{len(policies)} aws_iam_policy, want 1"):
        return
    pname, pbody, pfile = policies[0]
    m_doc = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", str(pbody.get("policy")))
    if not expect(m_doc, m, pfile, prop, f"aws_iam_policy.{pname} is not an aws_iam_policy_document"):
        return
    doc, file = m.one("aws_iam_policy_document", m_doc.group(1), prop, m.data)
    if doc is None:
        return

    # Statements on objects and on the key: resources -> (actions, a
    # condition each must carry). Those on the bucket itself follow below.
    expected = {
        (f"${{{bucket}.arn}}/${{var.prefix}}/*",): (
            {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}, None),
        ("${aws_kms_key.repository.arn}",): (
            {"kms:Decrypt", "kms:GenerateDataKey"},
            ("StringEquals", "kms:ViaService", ["s3.${var.region}.amazonaws.com"])),
    }
    expect("dynamic" not in doc, m, file, prop, "the policy has dynamic statements, which cannot be checked")
    granted = set()
    for s in blocks(doc, "statement"):
        sid = s.get("sid", "?")
        actions = m.resolve(s.get("actions", []))
        resources = m.resolve(s.get("resources", []))
        if not expect(isinstance(actions, list) and isinstance(resources, list), m, file, prop,
                      f"statement {sid}: actions and resources must be literal lists (or locals)"):
            continue
        resources = tuple(resources)
        granted |= set(actions)
        expect(s.get("effect", "Allow") == "Allow", m, file, prop, f"statement {sid} is not an Allow")
        for forbidden in ("not_actions", "not_resources", "principals", "not_principals"):
            expect(forbidden not in s, m, file, prop, f"statement {sid} uses {forbidden}")
        for a in actions:
            expect("*" not in a, m, file, prop, f"statement {sid} grants wildcard action {a}")
        for r in resources:
            expect(r.startswith(("${" + bucket + ".arn}", "${aws_kms_key.repository.arn}")),
                   m, file, prop, f"statement {sid} reaches {r}, beyond the bucket and its key")
        conditions = [(c.get("test"), c.get("variable"), c.get("values")) for c in blocks(s, "condition")]
        if resources == (f"${{{bucket}.arn}}",):
            if "s3:ListBucket" in actions:
                expect(set(actions) == {"s3:ListBucket"}, m, file, prop,
                       f"statement {sid} mixes s3:ListBucket with {sorted(set(actions) - {'s3:ListBucket'})}")
                expect(("StringLike", "s3:prefix", ["${var.prefix}/*"]) in conditions, m, file, prop,
                       f"statement {sid} lists the bucket without an s3:prefix condition on var.prefix")
            else:
                expect(set(actions) <= {"s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration"},
                       m, file, prop, f"statement {sid} grants {sorted(actions)} on the whole bucket")
        elif expect(resources in expected, m, file, prop,
                    f"statement {sid} reaches {list(resources)}, not the objects under var.prefix or the key"):
            want_actions, want_condition = expected[resources]
            expect(set(actions) == want_actions, m, file, prop,
                   f"statement {sid} grants {sorted(actions)}, want {sorted(want_actions)}")
            if want_condition:
                expect(want_condition in conditions, m, file, prop,
                       f"statement {sid} lacks the condition {want_condition}")
    expect(granted == AWS_ACTIONS, m, file, prop,
           f"the policy grants {sorted(granted)}, want exactly {sorted(AWS_ACTIONS)}")

    # Only this policy, only on Bulwark's role and group; no inline or AWS-managed policy.
    for rtype in ("aws_iam_role_policy_attachment", "aws_iam_group_policy_attachment",
                  "aws_iam_user_policy_attachment"):
        for aname, abody, afile in m.of_type(rtype):
            expect(abody.get("policy_arn") == f"${{aws_iam_policy.{pname}.arn}}", m, afile, prop,
                   f"{rtype}.{aname} attaches {abody.get('policy_arn')}, not aws_iam_policy.{pname}")
    for rtype in ("aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy",
                  "aws_iam_policy_attachment"):
        for aname, _, afile in m.of_type(rtype):
            expect(False, m, afile, prop, f"{rtype}.{aname} grants permissions outside the one policy")

    check_optional_flag(m, "create_access_key", prop)
    for kname, kbody, kfile in m.of_type("aws_iam_access_key"):
        expect(kbody.get("count") == "${var.create_access_key ? 1 : 0}", m, kfile, prop,
               f"aws_iam_access_key.{kname} is not made exactly when var.create_access_key")
    role, rfile = m.one("aws_iam_role", "bulwark", prop)
    if role:
        expect(refers(role.get("assume_role_policy"), "data.aws_iam_policy_document"), m, rfile, prop,
               "the role's trust policy is not a policy document")


# --- Azure -------------------------------------------------------------------

def check_azure(m):
    accounts = m.of_type("azurerm_storage_account")
    if not expect(len(accounts) == 1, m, "*.tf", "storage account", f"{len(accounts)} storage accounts, want 1"):
        return
    aname, acct, file = accounts[0]
    address = f"azurerm_storage_account.{aname}"

    expect(first(acct, "blob_properties").get("versioning_enabled") is True, m, file, "versioning",
           "blob_properties.versioning_enabled is not true")

    cmk = first(acct, "customer_managed_key")
    m_key = re.fullmatch(r"\$\{azurerm_key_vault_key\.(\w+)\.versionless_id\}", str(cmk.get("key_vault_key_id")))
    if expect(m_key, m, file, "customer-managed key",
              "customer_managed_key does not name a key vault key without its version"):
        key, key_file = m.one("azurerm_key_vault_key", m_key.group(1), "key rotation")
        if key:
            policy = first(key, "rotation_policy")
            expect(first(policy, "automatic").get("time_after_creation"), m, key_file, "key rotation",
                   "the key has no automatic rotation (rotation_policy.automatic.time_after_creation)")
    for vname, vault, vfile in m.of_type("azurerm_key_vault"):
        expect(vault.get("purge_protection_enabled") is True, m, vfile, "customer-managed key",
               f"key vault {vname} lacks purge protection: a deleted key would destroy the data")

    expect(acct.get("allow_nested_items_to_be_public") is False, m, file, "public access blocked",
           "allow_nested_items_to_be_public is not false")
    for cname, container, cfile in m.of_type("azurerm_storage_container"):
        expect(container.get("container_access_type") == "private", m, cfile, "public access blocked",
               f"container {cname} is not private")

    expect(acct.get("https_traffic_only_enabled") is True, m, file, "TLS only",
           "https_traffic_only_enabled is not true")
    expect(acct.get("min_tls_version") == "TLS1_2", m, file, "TLS only", "min_tls_version is not TLS1_2")

    policies = [(b, f) for _, b, f in m.of_type("azurerm_storage_management_policy")
                if refers(b.get("storage_account_id"), address)]
    if expect(policies, m, "*.tf", "lifecycle", "no azurerm_storage_management_policy for the account"):
        body, pfile = policies[0]
        actions = [first(r, "actions") for r in blocks(body, "rule") if r.get("enabled") is True]
        base = [first(a, "base_blob") for a in actions]
        expect(any(b.get("tier_to_cool_after_days_since_modification_greater_than")
                   == var("infrequent_access_after_days") for b in base), m, pfile, "lifecycle",
               "no move to Cool after var.infrequent_access_after_days")
        expect(any(b.get("tier_to_cold_after_days_since_modification_greater_than")
                   == var("archive_after_days") for b in base), m, pfile, "lifecycle",
               "no move to Cold after var.archive_after_days")
        expect(any(first(a, "version").get("delete_after_days_since_creation")
                   == var("noncurrent_version_expiration_days") for a in actions), m, pfile, "lifecycle",
               "previous versions are not deleted after var.noncurrent_version_expiration_days")

    check_optional_flag(m, "immutability_enabled", "immutability")
    immutability = dynamic(acct, "immutability_policy")
    if expect(immutability, m, file, "immutability", "no dynamic immutability_policy on the account"):
        expect(immutability.get("for_each") == "${var.immutability_enabled ? [1] : []}", m, file,
               "immutability", "the immutability policy is not there exactly when var.immutability_enabled")

    logs = [(b, f) for _, b, f in m.of_type("azurerm_monitor_diagnostic_setting")
            if b.get("target_resource_id") == f"${{{address}.id}}/blobServices/default"]
    if expect(logs, m, "*.tf", "access logging", "no diagnostic setting on the blob service"):
        body, lfile = logs[0]
        categories = {e.get("category") for e in blocks(body, "enabled_log")}
        for category in ("StorageRead", "StorageWrite", "StorageDelete"):
            expect(category in categories, m, lfile, "access logging", f"{category} is not logged")

    # Bulwark's credential: a SAS for the one container with exactly its permissions.
    prop = "least privilege"
    sas = m.of_type("azurerm_storage_account_blob_container_sas", m.data)
    if expect(len(sas) == 1, m, "access.tf", prop, f"{len(sas)} container SAS data sources, want 1"):
        sname, body, sfile = sas[0]
        expect(refers(body.get("container_name"), "azurerm_storage_container"), m, sfile, prop,
               "the SAS is not for the repository container")
        expect(body.get("https_only") is True, m, sfile, prop, "the SAS allows plain HTTP")
        perms = first(body, "permissions")
        granted = {p for p, on in perms.items() if on is True}
        expect(granted == AZURE_SAS_PERMISSIONS, m, sfile, prop,
               f"the SAS grants {sorted(granted)}, want exactly {sorted(AZURE_SAS_PERMISSIONS)}")
        body, ofile = m.outputs.get("sas_token", ({}, "outputs.tf"))
        expect(refers(body.get("value"), f"data.azurerm_storage_account_blob_container_sas.{sname}"),
               m, ofile, prop, "output sas_token is not the container SAS")
    for rtype in ("azurerm_storage_account_sas", "azurerm_role_assignment"):
        for n, _, f in m.of_type(rtype, m.data) + m.of_type(rtype):
            expect(False, m, f, prop, f"{rtype}.{n} grants more than the container SAS")


# --- GCP ---------------------------------------------------------------------

def check_gcp(m):
    bucket, file = m.one("google_storage_bucket", "repository", "bucket")
    if bucket is None:
        return
    address = "google_storage_bucket.repository"

    # Versioning is on unless a retention policy (which GCS forbids beside it) is.
    enabled = first(bucket, "versioning").get("enabled")
    retention_off = m.variables.get("retention_policy_enabled", ({}, ""))[0].get("default") is False
    expect(enabled is True or (enabled == "${var.retention_policy_enabled ? false : true}" and retention_off),
           m, file, "versioning", f"versioning.enabled is {enabled!r}")

    kms = first(bucket, "encryption").get("default_kms_key_name")
    m_key = re.fullmatch(r"\$\{google_kms_crypto_key\.(\w+)\.id\}", str(kms))
    if expect(m_key, m, file, "customer-managed key", "encryption.default_kms_key_name is not a KMS crypto key"):
        key, key_file = m.one("google_kms_crypto_key", m_key.group(1), "key rotation")
        if key:
            expect(key.get("rotation_period"), m, key_file, "key rotation", "the key has no rotation_period")
            days, vfile = m.variables.get("key_rotation_days", ({}, "variables.tf"))
            expect(isinstance(days.get("default"), int) and days["default"] <= 90, m, vfile, "key rotation",
                   f"key_rotation_days defaults to {days.get('default')!r}, not at most 90")
        agent = [b for _, b, _ in m.of_type("google_kms_crypto_key_iam_member")
                 if refers(b.get("crypto_key_id"), f"google_kms_crypto_key.{m_key.group(1)}")
                 and b.get("role") == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
                 and refers(b.get("member"), "data.google_storage_project_service_account")]
        expect(agent, m, key_file or "kms.tf", "customer-managed key",
               "the Cloud Storage service agent is not granted cryptoKeyEncrypterDecrypter on the key")

    for bname, b, bfile in m.of_type("google_storage_bucket"):
        expect(b.get("uniform_bucket_level_access") is True, m, bfile, "public access blocked",
               f"bucket {bname} lacks uniform bucket-level access")
        expect(b.get("public_access_prevention") == "enforced", m, bfile, "public access blocked",
               f"bucket {bname} does not enforce public access prevention")
    for rtype in ("google_storage_bucket_iam_member", "google_storage_bucket_iam_binding"):
        for n, b, f in m.of_type(rtype):
            members = b.get("members", [b.get("member")])
            expect(not any(x in ("allUsers", "allAuthenticatedUsers") for x in members), m, f,
                   "public access blocked", f"{rtype}.{n} grants the public")

    rules = [(first(r, "condition"), first(r, "action")) for r in blocks(bucket, "lifecycle_rule")]
    classes = {c.get("age"): a.get("storage_class") for c, a in rules if a.get("type") == "SetStorageClass"}
    expect(classes.get(var("infrequent_access_after_days")) == var("infrequent_access_storage_class"),
           m, file, "lifecycle", "no move after var.infrequent_access_after_days to var.infrequent_access_storage_class")
    expect(classes.get(var("archive_after_days")) == var("archive_storage_class"),
           m, file, "lifecycle", "no move after var.archive_after_days to var.archive_storage_class")
    expect(any(a.get("type") == "Delete" and c.get("with_state") == "ARCHIVED"
               and c.get("days_since_noncurrent_time") == var("noncurrent_version_expiration_days")
               for c, a in rules), m, file, "lifecycle",
           "noncurrent versions are not deleted after var.noncurrent_version_expiration_days")

    check_optional_flag(m, "retention_policy_enabled", "retention policy")
    retention = dynamic(bucket, "retention_policy")
    if expect(retention, m, file, "retention policy", "no dynamic retention_policy on the bucket"):
        expect(retention.get("for_each") == "${var.retention_policy_enabled ? [1] : []}", m, file,
               "retention policy", "the retention policy is not there exactly when var.retention_policy_enabled")
        expect(first(retention, "content").get("is_locked") == var("retention_policy_locked"), m, file,
               "retention policy", "is_locked is not var.retention_policy_locked")

    log_bucket = first(bucket, "logging").get("log_bucket")
    expect(refers(log_bucket, "google_storage_bucket") and not refers(log_bucket, address), m, file,
           "access logging", "usage logs do not go to a separate log bucket")

    # Bulwark's identity: a custom role with exactly its permissions, granted
    # on the bucket only, confined to the prefix; nothing project-wide.
    prop = "least privilege"
    roles = m.of_type("google_project_iam_custom_role")
    if expect(len(roles) == 1, m, "iam.tf", prop, f"{len(roles)} custom roles, want 1"):
        rname, role, rfile = roles[0]
        permissions = set(m.resolve(role.get("permissions", [])))
        expect(permissions == GCP_PERMISSIONS, m, rfile, prop,
               f"the role has {sorted(permissions)}, want exactly {sorted(GCP_PERMISSIONS)}")
        grants = [(b, f) for _, b, f in m.of_type("google_storage_bucket_iam_member")
                  if b.get("role") == f"${{google_project_iam_custom_role.{rname}.id}}"]
        if expect(len(grants) == 1, m, rfile, prop, f"the role is granted {len(grants)} times, want once"):
            grant, gfile = grants[0]
            expect(refers(grant.get("bucket"), address), m, gfile, prop, "the role is not granted on the repository bucket")
            expect(refers(grant.get("member"), "google_service_account.bulwark"), m, gfile, prop,
                   "the role is not granted to Bulwark's service account")
            expression = first(grant, "condition").get("expression", "")
            expect("/objects/${var.prefix}/" in expression and "objectListPrefix" in expression, m, gfile, prop,
                   "the grant's condition does not confine objects and listings to var.prefix")
    for rtype in ("google_project_iam_member", "google_project_iam_binding", "google_project_iam_policy",
                  "google_storage_bucket_iam_binding", "google_storage_bucket_iam_policy"):
        for n, _, f in m.of_type(rtype):
            expect(False, m, f, prop, f"{rtype}.{n}: grants go on the bucket, one member at a time")
    check_optional_flag(m, "create_key", prop)
    for kname, kbody, kfile in m.of_type("google_service_account_key"):
        expect(kbody.get("count") == "${var.create_key ? 1 : 0}", m, kfile, prop,
               f"google_service_account_key.{kname} is not made exactly when var.create_key")


CHECKS = {"aws": check_aws, "azure": check_azure, "gcp": check_gcp}


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/terraform")
    for name, check in CHECKS.items():
        path = root / name
        if not path.is_dir():
            failures.append(f"{name}: {path} is missing")
            continue
        try:
            module = Module(path)
        except ValueError as e:
            failures.append(f"{name}: cannot parse {e}")
            continue
        check_common(module)
        check(module)
    for line in failures:
        print(line)
    if failures:
        print(f"{len(failures)} terraform properties broken")
        return 1
    print(f"terraform properties hold in {', '.join(CHECKS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
