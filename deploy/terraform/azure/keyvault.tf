# The customer-managed key of the storage account, in a key vault of its
# own. Key Vault makes a new key version on the rotation policy's schedule;
# the account names the key without a version, so Azure Storage re-wraps
# its account key with the newest version by itself.

data "azurerm_client_config" "current" {}

data "azurerm_resource_group" "this" {
  name = var.resource_group_name
}

locals {
  location = coalesce(var.location, data.azurerm_resource_group.this.location)
}

# The storage account's identity for the key: it exists before the account,
# so the vault grants it access before the account first needs the key.
resource "azurerm_user_assigned_identity" "storage" {
  name                = "${var.storage_account_name}-cmk"
  resource_group_name = var.resource_group_name
  location            = local.location
  tags                = var.tags
}

resource "azurerm_key_vault" "this" {
  #checkov:skip=CKV_AZURE_189:public network access stays on so the storage account (trusted service) and the allowed addresses reach the vault without private endpoints; network_acls deny everything else by default
  #checkov:skip=CKV2_AZURE_32:a private endpoint needs a virtual network this module does not own; network_acls restrict the vault instead
  name                          = var.key_vault_name
  resource_group_name           = var.resource_group_name
  location                      = local.location
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "premium" # HSM-protected keys
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = true
  tags                          = var.tags

  network_acls {
    default_action = var.network_default_action
    bypass         = "AzureServices"
    ip_rules       = var.allowed_ip_ranges
  }
}

# Whoever runs Terraform manages the key (create, rotate, read the policy).
resource "azurerm_key_vault_access_policy" "deployer" {
  key_vault_id = azurerm_key_vault.this.id
  tenant_id    = data.azurerm_client_config.current.tenant_id
  object_id    = data.azurerm_client_config.current.object_id

  key_permissions = [
    "Create", "Delete", "Get", "GetRotationPolicy", "List", "Recover",
    "Rotate", "SetRotationPolicy", "Update",
  ]
}

# The storage account only wraps and unwraps its account key.
resource "azurerm_key_vault_access_policy" "storage" {
  key_vault_id = azurerm_key_vault.this.id
  tenant_id    = azurerm_user_assigned_identity.storage.tenant_id
  object_id    = azurerm_user_assigned_identity.storage.principal_id

  key_permissions = ["Get", "UnwrapKey", "WrapKey"]
}

resource "azurerm_key_vault_key" "storage" {
  #checkov:skip=CKV_AZURE_40:versions expire through rotation_policy.expire_after (twice the rotation period); a fixed expiration_date would be a deadline Terraform has to keep moving, after which the account could not unwrap its key
  name         = "${var.storage_account_name}-cmk"
  key_vault_id = azurerm_key_vault.this.id
  key_type     = "RSA-HSM"
  key_size     = 3072
  key_opts     = ["unwrapKey", "wrapKey"]

  rotation_policy {
    automatic {
      time_after_creation = "P${var.key_rotation_days}D"
    }
    # A version that somehow outlives its rotation still expires.
    expire_after         = "P${var.key_rotation_days * 2}D"
    notify_before_expiry = "P30D"
  }

  depends_on = [azurerm_key_vault_access_policy.deployer]
}
