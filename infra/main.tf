data "google_project" "this" {}

locals {
  stages     = ["story", "images", "video"]
  job_stages = ["images", "video"]

  # Derived exactly as the code derives them:
  # topic_id() in adapters/gcp/pubsub.py, CloudRunJobRunner.job_name() in adapters/gcp/run_jobs.py.
  topic_ids = { for s in local.stages : s => "${var.topic_prefix}-${s}-requested" }
  job_ids   = { for s in local.job_stages : s => "${var.run_job_prefix}-${s}" }

  stage_functions = { for s in local.stages : s => "${s}_requested" }

  # A gen2 function's URL is known before it exists; DEEPFLIX_TASKS_URL needs it in the
  # tasks function's own environment, so it cannot come from the resource.
  function_url = { for f in keys(var.functions) : f => "https://${var.region}-${var.project}.cloudfunctions.net/${f}" }

  # Timeouts: longer than the stage each function serves. The story runs in its function;
  # images and video only start a job there, but the margin is kept so a slow start
  # never cuts the handler short of the stage's own deadline.
  function_timeout_s = {
    api              = 60
    tasks            = 120
    story_requested  = var.stage_timeout_s["story"] + 60
    images_requested = var.stage_timeout_s["images"] + 60
    video_requested  = var.stage_timeout_s["video"] + 60
  }

  # Pub/Sub caps the ack deadline at 600 s; the stage function answers within its timeout.
  ack_deadline_s = { for s in local.stages : s => min(600, local.function_timeout_s["${s}_requested"]) }

  job_image = var.job_image != "" ? var.job_image : "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}/deepflix-job:latest"

  artifacts_bucket = "${var.project}-${var.name_prefix}-artifacts"
  sources_bucket   = "${var.project}-${var.name_prefix}-sources"

  common_env = {
    DEEPFLIX_BACKEND               = "gcp"
    DEEPFLIX_GCP_PROJECT           = var.project
    DEEPFLIX_GCP_LOCATION          = var.region
    DEEPFLIX_TASKS_QUEUE           = var.tasks_queue
    DEEPFLIX_TASKS_URL             = local.function_url["tasks"]
    DEEPFLIX_TASKS_SERVICE_ACCOUNT = google_service_account.tasks_invoker.email
    DEEPFLIX_TOPIC_PREFIX          = var.topic_prefix
    DEEPFLIX_RUN_JOB_PREFIX        = var.run_job_prefix
    DEEPFLIX_JOB_RUNNER            = "cloudrun"
    DEEPFLIX_ARTIFACTS             = "gcs"
    DEEPFLIX_ARTIFACTS_BUCKET      = google_storage_bucket.artifacts.name
    DEEPFLIX_STORY_TIMEOUT_S       = tostring(var.stage_timeout_s["story"])
    DEEPFLIX_IMAGES_TIMEOUT_S      = tostring(var.stage_timeout_s["images"])
    DEEPFLIX_VIDEO_TIMEOUT_S       = tostring(var.stage_timeout_s["video"])
    DEEPFLIX_LOG_LEVEL             = "INFO"

    # Checked in the code as well as by IAM (docs/decisions/0018): who may call the internal
    # endpoints, and the audiences their tokens carry (each function's own URL).
    DEEPFLIX_INTERNAL_CALLERS = join(",", [
      google_service_account.tasks_invoker.email,
      google_service_account.scheduler.email,
      google_service_account.push.email,
    ])
    DEEPFLIX_QUOTA_ACTIVE_MOVIES      = tostring(var.quotas.active_movies)
    DEEPFLIX_QUOTA_CREATES_PER_MINUTE = tostring(var.quotas.creates_per_minute)
    DEEPFLIX_QUEUE_CAP                = tostring(var.quotas.queue_cap)
    DEEPFLIX_INTERNAL_AUDIENCES       = join(",", [for f in ["tasks", "story_requested", "images_requested", "video_requested"] : local.function_url[f]])
    DEEPFLIX_TRACE_EXPORT             = tostring(var.trace_export)
  }

  labels = { app = "deepflix", env = var.env }
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "cloudtrace.googleapis.com",
    "eventarc.googleapis.com",
    "firebaserules.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "identitytoolkit.googleapis.com", # Firebase Authentication: the users behind ID tokens
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}
