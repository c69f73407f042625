# Bulwark's credential: a service SAS for the repository container only.
# Bulwark's Azure backend authenticates with AZURE_ACCOUNT_NAME plus
# AZURE_ACCOUNT_KEY or AZURE_ACCOUNT_SAS (or a connection string); it
# speaks no Azure AD, so a role assignment would give it nothing it can
# use. The account key would open every container; this SAS opens one.
#
# Its permissions are exactly the requests Bulwark makes
# (crates/repo/src/backend/object/{mod,azure}.rs) on blobs under the
# prefix: r = Get Blob (also ranged) and Get Blob Properties, a/c/w = Put
# Blob, d = Delete Blob, l = List Blobs. A SAS cannot be narrowed to a
# prefix; the container holds only this repository.

# A fixed issue time, renewed every sas_renew_after_days, so that the token
# stays the same between runs and changes only when it is due.
resource "time_rotating" "sas" {
  rotation_days = var.sas_renew_after_days
}

data "azurerm_storage_account_blob_container_sas" "bulwark" {
  connection_string = azurerm_storage_account.this.primary_connection_string
  container_name    = azurerm_storage_container.repository.name
  https_only        = true

  start  = time_rotating.sas.rfc3339
  expiry = timeadd(time_rotating.sas.rotation_rfc3339, "${var.sas_grace_days * 24}h")

  permissions {
    read   = true
    add    = true
    create = true
    write  = true
    delete = true
    list   = true
  }
}
