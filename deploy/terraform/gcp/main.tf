# The repository bucket: private, versioned, encrypted with the customer-
# managed key, with lifecycle rules, usage logs and, when asked for, a
# retention policy. GCS is reachable only over HTTPS (its JSON and XML APIs
# have no plain-HTTP endpoint), so TLS-only needs no setting; uniform
# bucket-level access turns object ACLs off and public access prevention
# refuses allUsers and allAuthenticatedUsers whatever IAM says.

resource "google_storage_bucket" "repository" {
  name                        = var.bucket_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  # GCS refuses Object Versioning on a bucket with a retention policy.
  versioning {
    enabled = var.retention_policy_enabled ? false : true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.repository.id
  }

  logging {
    log_bucket        = google_storage_bucket.logs.name
    log_object_prefix = "gcs-usage/${var.bucket_name}"
  }

  # Data packs only; every class is online, so Bulwark reads them directly.
  lifecycle_rule {
    condition {
      age                   = var.infrequent_access_after_days
      matches_prefix        = ["${var.prefix}/data/"]
      matches_storage_class = ["STANDARD"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = var.infrequent_access_storage_class
    }
  }

  lifecycle_rule {
    condition {
      age                   = var.archive_after_days
      matches_prefix        = ["${var.prefix}/data/"]
      matches_storage_class = ["STANDARD", var.infrequent_access_storage_class]
    }
    action {
      type          = "SetStorageClass"
      storage_class = var.archive_storage_class
    }
  }

  # What prune deleted and what a lock file overwrote, kept by versioning,
  # goes after noncurrent_version_expiration_days.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_expiration_days
      with_state                 = "ARCHIVED"
      matches_prefix             = ["${var.prefix}/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  # Objects younger than retention_days cannot be deleted or replaced:
  # forget/prune of recent snapshots is refused, and Bulwark's lock files
  # stay until they are old enough (Bulwark ignores them once stale).
  dynamic "retention_policy" {
    for_each = var.retention_policy_enabled ? [1] : []
    content {
      retention_period = tostring(var.retention_days * 86400)
      is_locked        = var.retention_policy_locked
    }
  }

  # The bucket cannot be created with a key its service agent cannot use.
  depends_on = [google_kms_crypto_key_iam_member.gcs_service_agent]

  lifecycle {
    precondition {
      condition     = var.archive_after_days > var.infrequent_access_after_days
      error_message = "archive_after_days must be greater than infrequent_access_after_days."
    }
  }
}
