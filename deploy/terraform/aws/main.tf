# The repository bucket: private, versioned, encrypted with the customer-
# managed key, reachable only over TLS, with lifecycle rules and, when
# asked for, Object Lock.

resource "aws_s3_bucket" "repository" {
  #checkov:skip=CKV_AWS_144:cross-region replication is the user's choice of second copy; Bulwark's own `copy` to a repository in another region or cloud is the documented way
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket event notifications; Bulwark's own events (issue 15) report every backup
  bucket              = var.bucket_name
  object_lock_enabled = var.object_lock_enabled
}

resource "aws_s3_bucket_versioning" "repository" {
  bucket = aws_s3_bucket.repository.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "repository" {
  bucket = aws_s3_bucket.repository.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.repository.arn
    }
    # One data key per bucket instead of one KMS request per object:
    # fewer KMS calls and costs for a repository of many packs.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "repository" {
  bucket                  = aws_s3_bucket.repository.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs off: the bucket owner owns every object and only policies grant access.
resource "aws_s3_bucket_ownership_controls" "repository" {
  bucket = aws_s3_bucket.repository.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# TLS only: every request over plain HTTP, or over TLS older than 1.2, is
# refused whoever makes it.
data "aws_iam_policy_document" "repository_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.repository.arn,
      "${aws_s3_bucket.repository.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid     = "DenyOldTls"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.repository.arn,
      "${aws_s3_bucket.repository.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "repository" {
  bucket = aws_s3_bucket.repository.id
  policy = data.aws_iam_policy_document.repository_bucket.json

  # A bucket policy is refused while the public access block is being set.
  depends_on = [aws_s3_bucket_public_access_block.repository]
}

resource "aws_s3_bucket_lifecycle_configuration" "repository" {
  bucket = aws_s3_bucket.repository.id

  # Data packs only: the rest of the repository is small and read on every
  # run. Both classes are read directly (no restore step), which restores
  # and `check --read-data` need.
  rule {
    id     = "data-packs-to-colder-classes"
    status = "Enabled"

    filter {
      prefix = "${var.prefix}/data/"
    }

    transition {
      days          = var.infrequent_access_after_days
      storage_class = var.infrequent_access_storage_class
    }

    transition {
      days          = var.archive_after_days
      storage_class = var.archive_storage_class
    }
  }

  # Versioning keeps what prune deletes and what a lock file overwrites;
  # after noncurrent_version_expiration_days those versions go (never
  # before an Object Lock retention ends: S3 refuses).
  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {
      prefix = "${var.prefix}/"
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  # Anywhere in the bucket: parts of an upload that never finished cost
  # storage and can never be read.
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # Rules on a versioned bucket must wait for versioning.
  depends_on = [aws_s3_bucket_versioning.repository]

  lifecycle {
    precondition {
      condition     = var.archive_after_days >= var.infrequent_access_after_days + 30
      error_message = "archive_after_days must be at least 30 days after infrequent_access_after_days (S3 keeps objects in an infrequent-access class 30 days before the next transition)."
    }
  }
}

resource "aws_s3_bucket_object_lock_configuration" "repository" {
  count  = var.object_lock_enabled ? 1 : 0
  bucket = aws_s3_bucket.repository.id

  rule {
    default_retention {
      mode = var.object_lock_mode
      days = var.object_lock_retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.repository]
}
