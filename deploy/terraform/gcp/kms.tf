# The customer-managed key of the bucket. Cloud KMS makes a new primary
# version every key_rotation_days; objects keep the version they were
# written with, which stays enabled, so rotation needs nothing from Bulwark.
# Encryption is done by the project's Cloud Storage service agent, not by
# Bulwark's service account, which needs no KMS permission.

locals {
  key_rotation_seconds = var.key_rotation_days * 86400
}

resource "google_kms_key_ring" "repository" {
  name     = coalesce(var.key_ring_name, var.bucket_name)
  location = var.location
}

resource "google_kms_crypto_key" "repository" {
  name            = "${var.bucket_name}-objects"
  key_ring        = google_kms_key_ring.repository.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = "${local.key_rotation_seconds}s"
  labels          = var.labels

  version_template {
    algorithm        = "GOOGLE_SYMMETRIC_ENCRYPTION"
    protection_level = var.key_protection_level
  }

  # Destroying the key destroys every object encrypted with it.
  lifecycle {
    prevent_destroy = true
  }
}

data "google_storage_project_service_account" "gcs" {}

resource "google_kms_crypto_key_iam_member" "gcs_service_agent" {
  crypto_key_id = google_kms_crypto_key.repository.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}
