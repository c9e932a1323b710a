# Cloud Build triggers on the repository (when var.github_repo is set): dev builds every
# push to main; prod builds a release tag and waits for an approval in Cloud Build first.

variable "github_owner" {
  description = "Owner of the GitHub repository connected to Cloud Build (empty: no triggers)."
  type        = string
  default     = ""
}

variable "github_repo" {
  description = "Name of the connected GitHub repository (empty: no triggers)."
  type        = string
  default     = ""
}

variable "tf_state_bucket" {
  description = "The Terraform state bucket the triggered builds use (_TF_STATE_BUCKET)."
  type        = string
  default     = ""
}

locals {
  triggers = var.github_repo == "" ? {} : {
    dev  = { branch = "^main$", tag = null, approval = false }
    prod = { branch = null, tag = "^v[0-9]+\\.[0-9]+\\.[0-9]+$", approval = true }
  }
}

resource "google_service_account" "deployer" {
  account_id   = "${var.name_prefix}-deployer"
  display_name = "DeepFlix Cloud Build deployer"
}

# What terraform apply of this module manages; predefined admin roles, no basic roles.
resource "google_project_iam_member" "deployer" {
  # checkov:skip=CKV_GCP_41: the Cloud Build deployer runs terraform apply, which deploys functions and jobs as their runtime service accounts (actAs); no person holds this role
  # checkov:skip=CKV_GCP_49: the deployer creates and manages the service accounts this module declares; it is Cloud Build's identity, not a user's

  for_each = toset([
    "roles/artifactregistry.admin",
    "roles/cloudfunctions.admin",
    "roles/cloudscheduler.admin",
    "roles/cloudtasks.admin",
    "roles/datastore.owner",
    "roles/firebaserules.admin",
    "roles/iam.roleAdmin",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountUser",
    "roles/logging.configWriter",
    "roles/logging.logWriter",
    "roles/monitoring.editor",
    "roles/pubsub.admin",
    "roles/resourcemanager.projectIamAdmin",
    "roles/run.admin",
    "roles/serviceusage.serviceUsageAdmin",
    "roles/storage.admin",
  ])
  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.deployer.email}"
}

resource "google_cloudbuild_trigger" "deploy" {
  for_each        = local.triggers
  name            = "${var.name_prefix}-deploy-${each.key}"
  location        = "global" # GitHub App (1st-gen) repository connections trigger globally
  filename        = "cloudbuild.yaml"
  service_account = google_service_account.deployer.id

  github {
    owner = var.github_owner
    name  = var.github_repo
    push {
      branch = each.value.branch
      tag    = each.value.tag
    }
  }

  substitutions = {
    _ENV             = each.key
    _REGION          = var.region
    _TF_STATE_BUCKET = var.tf_state_bucket
  }

  approval_config {
    approval_required = each.value.approval
  }
}
