# Least privilege (the review's Appendix B): one identity per function and one for the jobs,
# plus the OIDC identities of Cloud Tasks, Cloud Scheduler and Pub/Sub push. No basic roles.
locals {
  runtime_identities = ["api", "tasks", "story", "images", "video", "job"]
  # Every runtime runs the whole service: Firestore, publishing, enqueuing.
  stage_runtimes = ["story", "images", "video"]
}

resource "google_service_account" "runtime" {
  for_each     = toset(local.runtime_identities)
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = "DeepFlix ${each.key} runtime"
}

resource "google_service_account" "tasks_invoker" {
  account_id   = "${var.name_prefix}-tasks-oidc"
  display_name = "DeepFlix Cloud Tasks OIDC identity"
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "DeepFlix Cloud Scheduler OIDC identity"
}

resource "google_service_account" "push" {
  account_id   = "${var.name_prefix}-push"
  display_name = "DeepFlix Pub/Sub push OIDC identity"
}

# Firestore has no finer grant than the project (or an IAM condition on the database).
resource "google_project_iam_member" "datastore_user" {
  for_each = toset(local.runtime_identities)
  project  = var.project
  role     = "roles/datastore.user"
  member   = "serviceAccount:${google_service_account.runtime[each.key].email}"
}

# Writing spans to Cloud Trace, only when they are exported.
resource "google_project_iam_member" "trace_agent" {
  for_each = var.trace_export ? toset(local.runtime_identities) : toset([])
  project  = var.project
  role     = "roles/cloudtrace.agent"
  member   = "serviceAccount:${google_service_account.runtime[each.key].email}"
}

resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = toset(local.runtime_identities)
  name     = google_cloud_tasks_queue.dispatch.name
  location = var.region
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.runtime[each.key].email}"
}

# Creating a task with an OIDC token acts as the tasks identity.
resource "google_service_account_iam_member" "act_as_tasks_invoker" {
  for_each           = toset(local.runtime_identities)
  service_account_id = google_service_account.tasks_invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.runtime[each.key].email}"
}

locals {
  publisher_pairs = {
    for pair in setproduct(local.runtime_identities, local.stages) : "${pair[0]}-${pair[1]}" => {
      identity = pair[0]
      stage    = pair[1]
    }
  }
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.publisher_pairs
  topic    = google_pubsub_topic.requests[each.value.stage].id
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.runtime[each.value.identity].email}"
}

# Cancelling an execution (a timed-out or cancelled movie's job): only that permission.
resource "google_project_iam_custom_role" "execution_canceller" {
  role_id     = "deepflixExecutionCanceller${title(var.env)}"
  title       = "DeepFlix execution canceller (${var.env})"
  permissions = ["run.executions.cancel", "run.executions.get"]
}

locals {
  # Not the job's own identity: a job never cancels an execution (not even its own, ADR 0023).
  canceller_pairs = {
    for pair in setproduct(setsubtract(local.runtime_identities, ["job"]), local.job_stages) : "${pair[0]}-${pair[1]}" => {
      identity = pair[0]
      stage    = pair[1]
    }
  }
  job_starter_pairs = {
    for pair in setproduct(local.stage_runtimes, local.job_stages) : "${pair[0]}-${pair[1]}" => {
      identity = pair[0]
      stage    = pair[1]
    }
  }
}

resource "google_cloud_run_v2_job_iam_member" "canceller" {
  for_each = local.canceller_pairs
  name     = google_cloud_run_v2_job.stage[each.value.stage].name
  location = var.region
  role     = google_project_iam_custom_role.execution_canceller.id
  member   = "serviceAccount:${google_service_account.runtime[each.value.identity].email}"
}

# The stage functions start executions with env overrides (runner.handle -> jobs.run).
resource "google_cloud_run_v2_job_iam_member" "starter" {
  for_each = local.job_starter_pairs
  name     = google_cloud_run_v2_job.stage[each.value.stage].name
  location = var.region
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = "serviceAccount:${google_service_account.runtime[each.value.identity].email}"
}

# Starting a job whose runtime identity is the job SA acts as it.
resource "google_service_account_iam_member" "act_as_job" {
  for_each           = toset(local.stage_runtimes)
  service_account_id = google_service_account.runtime["job"].name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.runtime[each.key].email}"
}

# Artifacts: the writers (the story function, the jobs) and the readers (the api's signed URLs).
resource "google_storage_bucket_iam_member" "artifact_writers" {
  for_each = toset(["story", "images", "video", "job"])
  bucket   = google_storage_bucket.artifacts.name
  role     = "roles/storage.objectAdmin"
  member   = "serviceAccount:${google_service_account.runtime[each.key].email}"
}

resource "google_storage_bucket_iam_member" "artifact_readers" {
  for_each = toset(["api", "tasks"])
  bucket   = google_storage_bucket.artifacts.name
  role     = "roles/storage.objectViewer"
  member   = "serviceAccount:${google_service_account.runtime[each.key].email}"
}

# Signed URLs through IAM signBlob: the api signs as itself.
resource "google_service_account_iam_member" "api_signs_as_itself" {
  service_account_id = google_service_account.runtime["api"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.runtime["api"].email}"
}

# Who may call what. Only the api is public; everything else only by its caller's identity.
resource "google_cloud_run_v2_service_iam_member" "api_public" {
  name     = google_cloudfunctions2_function.fn["api"].service_config[0].service
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_v2_service_iam_member" "tasks_invokers" {
  for_each = {
    tasks_oidc = google_service_account.tasks_invoker.email
    scheduler  = google_service_account.scheduler.email
  }
  name     = google_cloudfunctions2_function.fn["tasks"].service_config[0].service
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${each.value}"
}

resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  for_each = local.stage_functions
  name     = google_cloudfunctions2_function.fn[each.value].service_config[0].service
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}
