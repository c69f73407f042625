terraform {
  # 1.2 for lifecycle preconditions.
  required_version = ">= 1.2"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.9 gave containers storage_account_id: they are then managed through
      # Azure Resource Manager, not the blob endpoint the network rules close.
      version = "~> 4.9"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }
}

provider "azurerm" {
  subscription_id = var.subscription_id

  features {
    key_vault {
      # The key encrypts the repository: destroying this configuration must
      # leave it recoverable (purge protection forbids a purge anyway).
      purge_soft_delete_on_destroy = false
    }
  }
}
