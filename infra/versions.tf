terraform {
  required_version = ">= 1.5"

  # Each pin is exactly the version whose schema `make check-infra` checks infra/ against
  # (requirements-schema.txt): what deploys is what was checked. To move one, change it here and
  # its CDK package and hashes there together, then run `make check-infra` (infra/README.md).
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "6.50.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "0.13.1"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "2.7.1"
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
