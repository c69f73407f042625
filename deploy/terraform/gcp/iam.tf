# Bulwark's identity: a service account with exactly the requests its GCS
# backend makes (crates/repo/src/backend/object/{mod,gcs}.rs, through
# opendal's JSON API client) on objects under the prefix:
#
#   upload (one multipart request per object)  storage.objects.create
#     (replacing an existing object also needs  storage.objects.delete)
#   GET (also ranged), metadata GET            storage.objects.get
#   list PREFIX/keys/, PREFIX/data/, ...       storage.objects.list
#   DELETE                                     storage.objects.delete
#
# Nothing reads bucket metadata, so storage.buckets.get is absent. The
# role is defined in the project (defining grants nothing) and granted only
# on the bucket, with a condition that confines it to the prefix: object
# requests by the object's name, listings by the prefix they ask for.

locals {
  bulwark_permissions = [
    "storage.objects.create",
    "storage.objects.delete",
    "storage.objects.get",
    "storage.objects.list",
  ]
}

resource "google_service_account" "bulwark" {
  account_id   = var.service_account_id
  display_name = "Bulwark backups to ${var.bucket_name}/${var.prefix}"
}

resource "google_project_iam_custom_role" "bulwark" {
  role_id     = var.custom_role_id
  title       = "Bulwark repository objects"
  description = "Objects of a Bulwark repository; granted on its bucket only"
  permissions = local.bulwark_permissions
}

resource "google_storage_bucket_iam_member" "bulwark" {
  bucket = google_storage_bucket.repository.name
  role   = google_project_iam_custom_role.bulwark.id
  member = "serviceAccount:${google_service_account.bulwark.email}"

  condition {
    title       = "bulwark-repository-prefix"
    description = "Objects under ${var.prefix}/ and listings of that prefix"
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.repository.name}/objects/${var.prefix}/\") || api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${var.prefix}/\")"
  }
}

resource "google_service_account_key" "bulwark" {
  count              = var.create_key ? 1 : 0
  service_account_id = google_service_account.bulwark.name
}
