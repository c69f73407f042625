# The storage account and the repository container: private, versioned,
# encrypted with the customer-managed key, HTTPS with TLS 1.2 or newer
# only, with lifecycle rules and, when asked for, version-level
# immutability.

resource "azurerm_storage_account" "this" {
  #checkov:skip=CKV2_AZURE_40:Bulwark's Azure backend signs with a shared key or a SAS (AZURE_ACCOUNT_KEY / AZURE_ACCOUNT_SAS), and a SAS is signed with the account key, so shared-key authorization must stay on
  #checkov:skip=CKV_AZURE_59:public network access stays on so Bulwark's hosts reach the account without private endpoints; network_rules deny everything but allowed_ip_ranges by default
  #checkov:skip=CKV2_AZURE_33:a private endpoint needs a virtual network this module does not own; network_rules restrict the account instead
  #checkov:skip=CKV_AZURE_33:the account holds no queues; blob requests are logged through the diagnostic setting in logging.tf
  name                     = var.storage_account_name
  resource_group_name      = var.resource_group_name
  location                 = local.location
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.replication_type

  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = true
  public_network_access_enabled     = true
  infrastructure_encryption_enabled = true
  local_user_enabled                = false
  cross_tenant_replication_enabled  = false

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.storage.id]
  }

  customer_managed_key {
    key_vault_key_id          = azurerm_key_vault_key.storage.versionless_id
    user_assigned_identity_id = azurerm_user_assigned_identity.storage.id
  }

  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.soft_delete_days
    }

    container_delete_retention_policy {
      days = var.soft_delete_days
    }
  }

  network_rules {
    default_action = var.network_default_action
    bypass         = ["AzureServices", "Logging", "Metrics"]
    ip_rules       = var.allowed_ip_ranges
  }

  # SAS tokens live at most as long as this module issues them for.
  sas_policy {
    expiration_period = "${var.sas_renew_after_days + var.sas_grace_days}.00:00:00"
  }

  # Version-level immutability: every blob version is write-once for
  # immutability_days; deleting a blob leaves its protected versions.
  dynamic "immutability_policy" {
    for_each = var.immutability_enabled ? [1] : []
    content {
      allow_protected_append_writes = false
      state                         = var.immutability_locked ? "Locked" : "Unlocked"
      period_since_creation_in_days = var.immutability_days
    }
  }

  tags = var.tags

  depends_on = [azurerm_key_vault_access_policy.storage]
}

resource "azurerm_storage_container" "repository" {
  #checkov:skip=CKV2_AZURE_21:this check looks for classic Storage Analytics read through azurerm_log_analytics_storage_insights; here the blob service's reads, writes and deletes go to Log Analytics through the Azure Monitor diagnostic setting in logging.tf
  name                  = var.container_name
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

resource "azurerm_storage_management_policy" "this" {
  storage_account_id = azurerm_storage_account.this.id

  # Data packs only. Cool and Cold are both online tiers that Bulwark reads
  # directly; restores and `check --read-data` need that.
  rule {
    name    = "data-packs-to-colder-tiers"
    enabled = true

    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["${var.container_name}/${var.prefix}/data/"]
    }

    actions {
      base_blob {
        tier_to_cool_after_days_since_modification_greater_than = var.infrequent_access_after_days
        tier_to_cold_after_days_since_modification_greater_than = var.archive_after_days
      }
    }
  }

  rule {
    name    = "expire-noncurrent-versions"
    enabled = true

    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["${var.container_name}/${var.prefix}/"]
    }

    actions {
      version {
        delete_after_days_since_creation = var.noncurrent_version_expiration_days
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.archive_after_days > var.infrequent_access_after_days
      error_message = "archive_after_days must be greater than infrequent_access_after_days."
    }
  }
}
