# Read by scripts that hand these to Bulwark (`terraform output -json`):
# the names are a contract.

output "repository" {
  description = "The repository for Bulwark (and restic): -r, BULWARK_REPOSITORY or a [[backup]] repository."
  value       = "azure:${azurerm_storage_container.repository.name}:/${var.prefix}"
}

output "storage_account_name" {
  description = "AZURE_ACCOUNT_NAME for Bulwark."
  value       = azurerm_storage_account.this.name
}

output "container_name" {
  description = "The repository container."
  value       = azurerm_storage_container.repository.name
}

output "sas_token" {
  description = "AZURE_ACCOUNT_SAS for Bulwark: read, add, create, write, delete and list on the container, HTTPS only."
  value       = trimprefix(data.azurerm_storage_account_blob_container_sas.bulwark.sas, "?")
  sensitive   = true
}

output "sas_expiry" {
  description = "When sas_token stops working: run `terraform apply` and hand Bulwark the new token before then."
  value       = data.azurerm_storage_account_blob_container_sas.bulwark.expiry
}

output "key_vault_key_id" {
  description = "The customer-managed key (versionless) that encrypts the account."
  value       = azurerm_key_vault_key.storage.versionless_id
}
