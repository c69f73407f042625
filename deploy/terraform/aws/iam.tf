# Bulwark's identity: exactly the requests its S3 backend makes
# (crates/repo/src/backend/object/s3.rs), on this bucket's prefix and this
# key, nothing account-wide.
#
#   PUT, GET (also ranged), HEAD, DELETE of PREFIX/...  s3:PutObject, s3:GetObject, s3:DeleteObject
#   list PREFIX/keys/, PREFIX/data/, ...               s3:ListBucket with an s3:prefix condition
#   `bulwark init`'s report: GET ?versioning,
#   GET ?object-lock                                   s3:GetBucketVersioning, s3:GetBucketObjectLockConfiguration
#   SSE-KMS: encrypt on PUT, decrypt on GET             kms:GenerateDataKey, kms:Decrypt, only through S3
#
# kms:Encrypt is absent on purpose: S3 encrypts objects with data keys from
# GenerateDataKey and never calls Encrypt for its callers.

locals {
  bulwark_actions_objects = ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
  bulwark_actions_bucket  = ["s3:GetBucketObjectLockConfiguration", "s3:GetBucketVersioning"]
  bulwark_actions_kms     = ["kms:Decrypt", "kms:GenerateDataKey"]
}

data "aws_iam_policy_document" "bulwark" {
  statement {
    sid       = "RepositoryObjects"
    actions   = local.bulwark_actions_objects
    resources = ["${aws_s3_bucket.repository.arn}/${var.prefix}/*"]
  }

  statement {
    sid       = "ListRepositoryPrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.repository.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.prefix}/*"]
    }
  }

  statement {
    sid       = "BucketProtectionReport"
    actions   = local.bulwark_actions_bucket
    resources = [aws_s3_bucket.repository.arn]
  }

  statement {
    sid       = "RepositoryKeyThroughS3"
    actions   = local.bulwark_actions_kms
    resources = [aws_kms_key.repository.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "bulwark" {
  name        = var.role_name
  description = "Bulwark repository ${var.bucket_name}/${var.prefix}: objects under the prefix, the bucket's protection settings, the bucket key through S3"
  policy      = data.aws_iam_policy_document.bulwark.json
}

# --- The role ---------------------------------------------------------------

data "aws_iam_policy_document" "assume_role" {
  dynamic "statement" {
    for_each = length(var.trusted_services) > 0 ? [1] : []
    content {
      sid     = "TrustedServices"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "Service"
        identifiers = var.trusted_services
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.trusted_role_arns) > 0 ? [1] : []
    content {
      sid     = "TrustedPrincipals"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "AWS"
        identifiers = var.trusted_role_arns
      }
    }
  }

  dynamic "statement" {
    for_each = var.github_oidc_provider_arn == null ? [] : [1]
    content {
      sid     = "GitHubActions"
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = [var.github_oidc_provider_arn]
      }
      condition {
        test     = "StringEquals"
        variable = "token.actions.githubusercontent.com:aud"
        values   = ["sts.amazonaws.com"]
      }
      condition {
        test     = "StringLike"
        variable = "token.actions.githubusercontent.com:sub"
        values   = var.github_oidc_subjects
      }
    }
  }
}

resource "aws_iam_role" "bulwark" {
  name               = var.role_name
  description        = "Bulwark backups to ${var.bucket_name}/${var.prefix}"
  assume_role_policy = data.aws_iam_policy_document.assume_role.json

  lifecycle {
    precondition {
      condition     = length(var.trusted_services) + length(var.trusted_role_arns) > 0 || var.github_oidc_provider_arn != null
      error_message = "nobody could assume the role: set trusted_services, trusted_role_arns or github_oidc_provider_arn."
    }
    precondition {
      condition     = var.github_oidc_provider_arn == null || length(var.github_oidc_subjects) > 0
      error_message = "github_oidc_provider_arn is set but github_oidc_subjects is empty: name the repositories (repo:OWNER/REPO:...) that may assume the role."
    }
  }
}

resource "aws_iam_role_policy_attachment" "bulwark" {
  role       = aws_iam_role.bulwark.name
  policy_arn = aws_iam_policy.bulwark.arn
}

resource "aws_iam_instance_profile" "bulwark" {
  count = contains(var.trusted_services, "ec2.amazonaws.com") ? 1 : 0
  name  = var.role_name
  role  = aws_iam_role.bulwark.name
}

# --- Optional: a user with an access key ------------------------------------
# For hosts that can assume no role (a server outside AWS without OIDC).
# The policy reaches the user through a group, as IAM recommends.

resource "aws_iam_group" "bulwark" {
  count = var.create_access_key ? 1 : 0
  name  = var.user_name
}

resource "aws_iam_group_policy_attachment" "bulwark" {
  count      = var.create_access_key ? 1 : 0
  group      = aws_iam_group.bulwark[0].name
  policy_arn = aws_iam_policy.bulwark.arn
}

resource "aws_iam_user" "bulwark" {
  #checkov:skip=CKV_AWS_273:opt-in (create_access_key, default false) for hosts that cannot assume a role or use SSO; the role is the default
  count = var.create_access_key ? 1 : 0
  name  = var.user_name
}

resource "aws_iam_user_group_membership" "bulwark" {
  count  = var.create_access_key ? 1 : 0
  user   = aws_iam_user.bulwark[0].name
  groups = [aws_iam_group.bulwark[0].name]
}

resource "aws_iam_access_key" "bulwark" {
  count = var.create_access_key ? 1 : 0
  user  = aws_iam_user.bulwark[0].name
}
