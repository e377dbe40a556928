terraform {
  # The language used here needs 1.3 (optional object attributes with defaults); the providers
  # below need no more than a 1.x (plugin protocols 5 and 6), since none of their write-only or
  # ephemeral features, which need 1.11 and 1.10, is used.
  required_version = ">= 1.5"

  # Each pin is exactly the version whose schema `make check-infra` checks infra/ against
  # (requirements-schema.txt): what deploys is what was checked. To move one, change it here and
  # its cdktn-provider package and hashes there together, then run `make check-infra`
  # (infra/README.md, "Upgrading the providers").
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "8.7.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "8.7.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "0.14.2"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "2.8.1"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

# Only for google_project_service_identity, which the GA provider does not have.
provider "google-beta" {
  project = var.project_id
  region  = var.region
}
