variable "project_id" {
  description = "Google Cloud project of the bucket, key and service account."
  type        = string
}

variable "location" {
  description = "Region of the bucket and its key ring (e.g. europe-west3): a CMEK key must live where the bucket does."
  type        = string
}

variable "bucket_name" {
  description = "Bucket that holds the Bulwark repository (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 lowercase letters, digits, dots, hyphens or underscores."
  }
}

variable "prefix" {
  description = "Folder of the repository in the bucket; Bulwark's service account may touch nothing outside it."
  type        = string
  default     = "bulwark"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.prefix))
    error_message = "prefix must be a non-empty path like \"bulwark\" or \"hosts/web1\" (letters, digits, . _ -; no leading or trailing slash)."
  }
}

variable "log_bucket_name" {
  description = "Bucket that receives the usage logs; null means BUCKET_NAME-access-logs."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Days the usage logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.log_retention_days >= 1
    error_message = "log_retention_days must be at least 1."
  }
}

variable "key_ring_name" {
  description = "KMS key ring of the bucket key; null means BUCKET_NAME. Key rings cannot be deleted, so a name is used once per project and location."
  type        = string
  default     = null
}

variable "key_rotation_days" {
  description = "Days between automatic rotations of the bucket key (at most 90)."
  type        = number
  default     = 90

  validation {
    condition     = var.key_rotation_days >= 1 && var.key_rotation_days <= 90
    error_message = "key_rotation_days must be between 1 and 90."
  }
}

variable "key_protection_level" {
  description = "SOFTWARE or HSM protection of the bucket key."
  type        = string
  default     = "SOFTWARE"

  validation {
    condition     = contains(["SOFTWARE", "HSM"], var.key_protection_level)
    error_message = "key_protection_level must be SOFTWARE or HSM."
  }
}

# --- Lifecycle --------------------------------------------------------------
# Only data packs (PREFIX/data/) change class: the rest is read on every
# run. Every GCS class is online, so Bulwark reads packs in any of them.

variable "infrequent_access_after_days" {
  description = "Days after which data packs move to the infrequent-access class."
  type        = number
  default     = 30
}

variable "infrequent_access_storage_class" {
  description = "Infrequent-access class for data packs."
  type        = string
  default     = "NEARLINE"

  validation {
    condition     = contains(["NEARLINE", "COLDLINE"], var.infrequent_access_storage_class)
    error_message = "infrequent_access_storage_class must be NEARLINE or COLDLINE."
  }
}

variable "archive_after_days" {
  description = "Days after which data packs move to the archive class (ARCHIVE bills a pack for at least 365 days even when prune deletes it sooner)."
  type        = number
  default     = 90
}

variable "archive_storage_class" {
  description = "Archive class for data packs."
  type        = string
  default     = "ARCHIVE"

  validation {
    condition     = contains(["COLDLINE", "ARCHIVE"], var.archive_storage_class)
    error_message = "archive_storage_class must be COLDLINE or ARCHIVE."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten or deleted object versions are removed for good."
  type        = number
  default     = 365

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

# --- Retention (immutability) -----------------------------------------------

variable "retention_policy_enabled" {
  description = "A bucket retention policy: no object can be deleted or replaced before it is retention_days old. GCS forbids it together with Object Versioning, so versioning is off while it is on."
  type        = bool
  default     = false
}

variable "retention_days" {
  description = "Minimum age before an object may be deleted or replaced."
  type        = number
  default     = 30

  validation {
    condition     = var.retention_days >= 1
    error_message = "retention_days must be at least 1."
  }
}

variable "retention_policy_locked" {
  description = "Lock the retention policy (Bucket Lock): irreversible; the period can then only grow and the bucket cannot be deleted while it holds objects."
  type        = bool
  default     = false
}

# --- Bulwark's identity -----------------------------------------------------

variable "service_account_id" {
  description = "Account id of Bulwark's service account (6-30 characters)."
  type        = string
  default     = "bulwark-backup"
}

variable "custom_role_id" {
  description = "Id of the custom role with Bulwark's object permissions (defined in the project, granted only on the bucket)."
  type        = string
  default     = "bulwarkRepositoryObjects"
}

variable "create_key" {
  description = "Create a JSON key for the service account, for hosts outside Google Cloud without workload identity federation (the key lands in the Terraform state)."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels on the buckets and the key."
  type        = map(string)
  default     = { "managed-by" = "terraform", "app" = "bulwark" }
}
