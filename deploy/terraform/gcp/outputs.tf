# Read by scripts that hand these to Bulwark (`terraform output -json`):
# the names are a contract.

output "repository" {
  description = "The repository for Bulwark (and restic): -r, BULWARK_REPOSITORY or a [[backup]] repository."
  value       = "gs:${google_storage_bucket.repository.name}:/${var.prefix}"
}

output "bucket_name" {
  description = "The repository bucket."
  value       = google_storage_bucket.repository.name
}

output "service_account_email" {
  description = "Bulwark's service account: attach it to a VM, or let a workload identity pool impersonate it."
  value       = google_service_account.bulwark.email
}

output "service_account_key" {
  description = "The service account's JSON key, base64-encoded; null unless create_key. Decode it into the file GOOGLE_APPLICATION_CREDENTIALS names."
  value       = one(google_service_account_key.bulwark[*].private_key)
  sensitive   = true
}

output "kms_key_id" {
  description = "The bucket's customer-managed key."
  value       = google_kms_crypto_key.repository.id
}
