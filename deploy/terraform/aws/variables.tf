variable "region" {
  description = "AWS region of the bucket and its KMS key (e.g. eu-central-1)."
  type        = string
}

variable "bucket_name" {
  description = "Name of the bucket that holds the Bulwark repository (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 lowercase letters, digits, dots or hyphens."
  }
}

variable "prefix" {
  description = "Folder of the repository in the bucket; Bulwark's identity may touch nothing outside it."
  type        = string
  default     = "bulwark"

  validation {
    # Non-empty and without slashes at either end: an empty prefix would
    # hand the identity the whole bucket, and "a//b" is not what anyone means.
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.prefix))
    error_message = "prefix must be a non-empty path like \"bulwark\" or \"hosts/web1\" (letters, digits, . _ -; no leading or trailing slash)."
  }
}

variable "log_bucket_name" {
  description = "Bucket that receives the server access logs; null means BUCKET_NAME-access-logs."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Days the access logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.log_retention_days >= 1
    error_message = "log_retention_days must be at least 1."
  }
}

variable "kms_key_rotation_days" {
  description = "Days between automatic rotations of the KMS key (AWS allows 90-2560)."
  type        = number
  default     = 365

  validation {
    condition     = var.kms_key_rotation_days >= 90 && var.kms_key_rotation_days <= 2560
    error_message = "kms_key_rotation_days must be between 90 and 2560."
  }
}

variable "kms_deletion_window_days" {
  description = "Days a scheduled deletion of the KMS key waits (7-30): the window in which a mistake can be undone."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

# --- Lifecycle --------------------------------------------------------------
# Only data packs (PREFIX/data/) change class: config, keys, index and
# snapshots are read on every run and stay in STANDARD.

variable "infrequent_access_after_days" {
  description = "Days after which data packs move to the infrequent-access class."
  type        = number
  default     = 30

  validation {
    condition     = var.infrequent_access_after_days >= 30
    error_message = "infrequent_access_after_days must be at least 30 (S3's minimum for STANDARD_IA)."
  }
}

variable "infrequent_access_storage_class" {
  description = "Infrequent-access class for data packs."
  type        = string
  default     = "STANDARD_IA"

  validation {
    condition     = contains(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING"], var.infrequent_access_storage_class)
    error_message = "infrequent_access_storage_class must be STANDARD_IA, ONEZONE_IA or INTELLIGENT_TIERING."
  }
}

variable "archive_after_days" {
  description = "Days after which data packs move to the archive class."
  type        = number
  default     = 90
}

variable "archive_storage_class" {
  description = "Archive class for data packs. Only GLACIER_IR is offered: GLACIER and DEEP_ARCHIVE objects cannot be read until restored, so restores and `check --read-data` would fail."
  type        = string
  default     = "GLACIER_IR"

  validation {
    condition     = var.archive_storage_class == "GLACIER_IR"
    error_message = "archive_storage_class must be GLACIER_IR (Bulwark reads packs directly; GLACIER and DEEP_ARCHIVE need a restore first)."
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

# --- Object Lock ------------------------------------------------------------

variable "object_lock_enabled" {
  description = "Create the bucket with S3 Object Lock and a default retention (can only be chosen when the bucket is created)."
  type        = bool
  default     = false
}

variable "object_lock_mode" {
  description = "GOVERNANCE (privileged users may shorten it) or COMPLIANCE (nobody can, not even the account root)."
  type        = string
  default     = "GOVERNANCE"

  validation {
    condition     = contains(["GOVERNANCE", "COMPLIANCE"], var.object_lock_mode)
    error_message = "object_lock_mode must be GOVERNANCE or COMPLIANCE."
  }
}

variable "object_lock_retention_days" {
  description = "Default retention of every object version written while Object Lock is on."
  type        = number
  default     = 30

  validation {
    condition     = var.object_lock_retention_days >= 1
    error_message = "object_lock_retention_days must be at least 1."
  }
}

# --- Bulwark's identity -----------------------------------------------------

variable "role_name" {
  description = "Name of the IAM role (and policy) Bulwark uses."
  type        = string
  default     = "bulwark-backup"
}

variable "trusted_services" {
  description = "AWS services that may assume the role (ec2.amazonaws.com also gets an instance profile)."
  type        = list(string)
  default     = ["ec2.amazonaws.com"]
}

variable "trusted_role_arns" {
  description = "IAM roles or users that may assume the role (e.g. a CI runner's role)."
  type        = list(string)
  default     = []
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's existing token.actions.githubusercontent.com OIDC provider; null means no GitHub Actions trust."
  type        = string
  default     = null
}

variable "github_oidc_subjects" {
  description = "GitHub OIDC subjects allowed to assume the role, e.g. [\"repo:acme/infra:ref:refs/heads/main\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.github_oidc_subjects : can(regex("^repo:[^/*]+/[^*]+$", s))])
    error_message = "github_oidc_subjects must name a repository: repo:OWNER/REPO:... (a bare * would trust every repository on GitHub)."
  }
}

variable "create_access_key" {
  description = "Also create an IAM user with an access key, for hosts that cannot assume a role (the secret lands in the Terraform state)."
  type        = bool
  default     = false
}

variable "user_name" {
  description = "Name of the IAM user made when create_access_key is true."
  type        = string
  default     = "bulwark-backup"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { "managed-by" = "terraform", "app" = "bulwark" }
}
