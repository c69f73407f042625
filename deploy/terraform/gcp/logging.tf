# Usage logs (every request to the repository bucket) delivered hourly by
# Cloud Storage to a bucket of their own.

locals {
  log_bucket_name = coalesce(var.log_bucket_name, "${var.bucket_name}-access-logs")
}

resource "google_storage_bucket" "logs" {
  #checkov:skip=CKV_GCP_62:this is the usage-log bucket; logging it into itself would log every delivery of its own logs
  name                        = local.log_bucket_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.repository.id
  }

  lifecycle_rule {
    condition {
      age = var.log_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_service_agent]
}

# Cloud Storage writes usage logs as this Google group.
resource "google_storage_bucket_iam_member" "logs_writer" {
  bucket = google_storage_bucket.logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}
