# Cloud Tasks: one queue for every task kind (dispatch, deadlines, sweep, webhook).
resource "google_cloud_tasks_queue" "dispatch" {
  name     = var.tasks_queue
  location = var.region

  rate_limits {
    max_dispatches_per_second = var.tasks_rate.max_dispatches_per_second
    max_concurrent_dispatches = var.tasks_rate.max_concurrent_dispatches
  }

  # A 503 (an outage) is retried with backoff; the sweep is the net beyond these.
  retry_config {
    max_attempts       = 20
    max_retry_duration = "3600s"
    min_backoff        = "1s"
    max_backoff        = "60s"
    max_doublings      = 6
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.apis]
}

# Pub/Sub: one request topic per stage, pushed to its stage function with an OIDC token.
resource "google_pubsub_topic" "requests" {
  # checkov:skip=CKV_GCP_83: stage requests hold movie ids and attempt numbers only; Google-managed encryption is enough

  for_each                   = local.topic_ids
  name                       = each.value
  labels                     = local.labels
  message_retention_duration = "86400s"
  depends_on                 = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  # checkov:skip=CKV_GCP_83: dead letters are stage requests (movie ids, attempts); Google-managed encryption is enough

  name                       = "${var.topic_prefix}-dead-letter"
  labels                     = local.labels
  message_retention_duration = "604800s"
}

resource "google_pubsub_subscription" "dead_letter" {
  name                       = "${var.topic_prefix}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "push" {
  for_each = local.topic_ids
  name     = "${each.value}-push"
  topic    = google_pubsub_topic.requests[each.key].id

  ack_deadline_seconds       = local.ack_deadline_s[each.key]
  message_retention_duration = "86400s"

  push_config {
    push_endpoint = local.function_url[local.stage_functions[each.key]]
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.function_url[local.stage_functions[each.key]]
    }
  }

  retry_policy {
    minimum_backoff = "5s"
    maximum_backoff = "300s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = 10
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_pubsub_topic_iam_member.dead_letter_publisher]
}

# The Pub/Sub service agent forwards undeliverable messages: it publishes to the dead-letter
# topic and acknowledges on the source subscriptions.
locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = google_pubsub_subscription.push
  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Cloud Scheduler: /sweep every minute. The sweep carries correctness (timeouts, outbox
# sends, re-dispatch), so it is part of the deployment, not an option.
resource "google_cloud_scheduler_job" "sweep" {
  name             = "${var.name_prefix}-sweep"
  region           = var.region
  schedule         = var.sweep_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "120s"

  retry_config {
    retry_count          = 1
    min_backoff_duration = "5s"
    max_backoff_duration = "30s"
  }

  http_target {
    http_method = "POST"
    uri         = "${local.function_url["tasks"]}/sweep"
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.function_url["tasks"]
    }
  }

  depends_on = [google_project_service.apis]
}
