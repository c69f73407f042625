# The customer-managed key that encrypts every object in the repository
# bucket. AWS rotates its key material every kms_key_rotation_days; old
# material stays to decrypt what it encrypted, so rotation needs nothing
# from Bulwark.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

resource "aws_kms_key" "repository" {
  description             = "Bulwark repository bucket ${var.bucket_name}"
  enable_key_rotation     = true
  rotation_period_in_days = var.kms_key_rotation_days
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms_key.json
}

resource "aws_kms_alias" "repository" {
  name          = "alias/bulwark-${var.bucket_name}"
  target_key_id = aws_kms_key.repository.key_id
}

# The key policy leaves the key to the account's IAM: without this
# statement nobody, the account root included, could manage or use it.
# Bulwark's role gets use of the key through its own IAM policy (iam.tf),
# and only through S3.
data "aws_iam_policy_document" "kms_key" {
  #checkov:skip=CKV_AWS_109:a key policy's "*" resource is the key itself; the account-root statement is AWS's default that keeps the key manageable
  #checkov:skip=CKV_AWS_111:a key policy's "*" resource is the key itself, not every resource in the account
  #checkov:skip=CKV_AWS_356:a key policy's "*" resource is the key itself, not every resource in the account
  statement {
    sid       = "AccountAdministersTheKey"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
  }
}
