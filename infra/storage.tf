resource "google_storage_bucket" "artifacts" {
  # checkov:skip=CKV_GCP_62: access is recorded by Cloud Audit Logs (Data Access); legacy bucket access logs would add a second bucket to run
  # checkov:skip=CKV_GCP_78: artifacts are regenerable and named per attempt (never overwritten); soft delete covers mistakes, versions would only add cost

  name                        = local.artifacts_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = local.labels

  lifecycle_rule {
    condition {
      age = var.artifacts_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.apis]
}

# The zipped deploy unit of the functions (functions/, as .gcloudignore allows).
resource "google_storage_bucket" "sources" {
  # checkov:skip=CKV_GCP_62: function source archives, written by deploys only; Cloud Audit Logs record access
  # checkov:skip=CKV_GCP_78: each deploy uploads a new archive name; versions would only keep copies

  name                        = local.sources_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }
}

data "archive_file" "functions" {
  type        = "zip"
  source_dir  = "${path.module}/../functions"
  output_path = "${path.module}/.build/functions.zip"
  excludes = [
    ".env",
    ".venv",
    "venv",
    "data",
    "__pycache__",
    "deepflix/__pycache__",
    "deepflix_queue.egg-info",
  ]
}

resource "google_storage_bucket_object" "functions" {
  name   = "functions-${data.archive_file.functions.output_sha256}.zip"
  bucket = google_storage_bucket.sources.name
  source = data.archive_file.functions.output_path
}

resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84: the job image holds no secrets or data; Google-managed encryption is enough

  repository_id          = "${var.name_prefix}-images"
  location               = var.region
  format                 = "DOCKER"
  description            = "GPU-stage job images"
  cleanup_policy_dry_run = false
  labels                 = local.labels

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.registry_keep_versions
    }
  }

  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "604800s"
    }
  }

  depends_on = [google_project_service.apis]
}
