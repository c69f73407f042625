variable "subscription_id" {
  description = "Azure subscription that holds the resource group."
  type        = string
}

variable "resource_group_name" {
  description = "Existing resource group for the storage account, key vault and log workspace."
  type        = string
}

variable "location" {
  description = "Azure region; null means the resource group's."
  type        = string
  default     = null
}

variable "storage_account_name" {
  description = "Storage account that holds the repository container (globally unique, 3-24 lowercase letters and digits)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name must be 3-24 lowercase letters and digits."
  }
}

variable "container_name" {
  description = "Blob container of the repository."
  type        = string
  default     = "bulwark"

  validation {
    condition     = can(regex("^[a-z0-9](-?[a-z0-9])+$", var.container_name)) && length(var.container_name) <= 63
    error_message = "container_name must be 3-63 lowercase letters, digits and single hyphens."
  }
}

variable "prefix" {
  description = "Folder of the repository in the container."
  type        = string
  default     = "bulwark"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.prefix))
    error_message = "prefix must be a non-empty path like \"bulwark\" or \"hosts/web1\" (letters, digits, . _ -; no leading or trailing slash)."
  }
}

variable "replication_type" {
  description = "Storage redundancy. Geo-redundant by default: a backup that lives in one region shares that region's fate."
  type        = string
  default     = "GRS"

  validation {
    condition     = contains(["GRS", "RAGRS", "GZRS", "RAGZRS"], var.replication_type)
    error_message = "replication_type must be GRS, RAGRS, GZRS or RAGZRS."
  }
}

variable "key_vault_name" {
  description = "Key vault for the customer-managed key (globally unique, 3-24 characters)."
  type        = string
}

variable "key_rotation_days" {
  description = "Days between automatic rotations of the key; each version expires after twice that."
  type        = number
  default     = 90

  validation {
    condition     = var.key_rotation_days >= 28
    error_message = "key_rotation_days must be at least 28 (Key Vault's minimum expiry)."
  }
}

variable "allowed_ip_ranges" {
  description = "Public addresses that may reach the storage account and key vault: the machine that runs Terraform and Bulwark's hosts (single addresses, or CIDR ranges up to /30)."
  type        = list(string)
  default     = []
}

variable "network_default_action" {
  description = "Deny: only allowed_ip_ranges and Azure's trusted services reach the account and vault. Allow: anyone with a credential (e.g. GitHub-hosted runners, whose addresses change); TLS and the SAS still apply."
  type        = string
  default     = "Deny"

  validation {
    condition     = contains(["Deny", "Allow"], var.network_default_action)
    error_message = "network_default_action must be Deny or Allow."
  }
}

# --- Lifecycle --------------------------------------------------------------
# Only data packs (PREFIX/data/) change tier: the rest is read on every run.

variable "infrequent_access_after_days" {
  description = "Days after which data packs move to the Cool tier."
  type        = number
  default     = 30
}

variable "archive_after_days" {
  description = "Days after which data packs move to the Cold tier (Azure's Archive tier is offline: Bulwark could not read packs there without rehydration)."
  type        = number
  default     = 90
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which previous blob versions (what prune deleted or a lock file overwrote) are removed for good."
  type        = number
  default     = 365
}

variable "soft_delete_days" {
  description = "Days a deleted blob or container can be undeleted."
  type        = number
  default     = 30

  validation {
    condition     = var.soft_delete_days >= 1 && var.soft_delete_days <= 365
    error_message = "soft_delete_days must be between 1 and 365."
  }
}

# --- Immutability -----------------------------------------------------------

variable "immutability_enabled" {
  description = "Version-level immutability (WORM) for every blob version in the account."
  type        = bool
  default     = false
}

variable "immutability_days" {
  description = "Days each blob version stays immutable after it is written."
  type        = number
  default     = 30

  validation {
    condition     = var.immutability_days >= 1
    error_message = "immutability_days must be at least 1."
  }
}

variable "immutability_locked" {
  description = "Lock the immutability policy: nobody can shorten or remove it afterwards, and the account cannot be deleted while versions are protected."
  type        = bool
  default     = false
}

# --- Logging and Bulwark's SAS ----------------------------------------------

variable "log_retention_days" {
  description = "Days the Log Analytics workspace keeps blob and key vault logs (30-730)."
  type        = number
  default     = 365

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be between 30 and 730."
  }
}

variable "sas_renew_after_days" {
  description = "Days after which `terraform apply` issues a new SAS token."
  type        = number
  default     = 30

  validation {
    condition     = var.sas_renew_after_days >= 1
    error_message = "sas_renew_after_days must be at least 1."
  }
}

variable "sas_grace_days" {
  description = "Days an issued SAS token stays valid after it is due for renewal: the time to run `terraform apply` and hand the new token to Bulwark."
  type        = number
  default     = 14

  validation {
    condition     = var.sas_grace_days >= 1
    error_message = "sas_grace_days must be at least 1."
  }
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { "managed-by" = "terraform", "app" = "bulwark" }
}
