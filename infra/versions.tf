terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "= 6.44.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "= 2.7.1"
    }
  }

  # Partial configuration: the bucket and prefix come from envs/<env>.backend.hcl
  # (terraform init -backend-config=envs/dev.backend.hcl).
  backend "gcs" {}
}

provider "google" {
  project = var.project
  region  = var.region
}
