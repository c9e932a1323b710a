# Log-based metrics, alert policies, a dashboard and an uptime check. Alerts go to
# var.notification_channels (ids of channels that already exist).

resource "google_logging_metric" "stage_failed" {
  name        = "${var.name_prefix}/stage_failed"
  description = "Stage attempts that failed (runner.py logs 'stage failed'), by stage."
  filter      = "jsonPayload.logger=~\"^deepflix\" AND jsonPayload.message=~\"^stage failed\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key        = "stage"
      value_type = "STRING"
    }
  }
  label_extractors = {
    stage = "EXTRACT(jsonPayload.stage)"
  }
}

resource "google_logging_metric" "dropped_malformed" {
  name        = "${var.name_prefix}/dropped_malformed"
  description = "Tasks and messages acknowledged unprocessed because they were malformed."
  filter      = "jsonPayload.logger=~\"^deepflix\" AND jsonPayload.message=~\"^dropping (malformed|a task of unknown kind)\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_logging_metric" "sweeps" {
  name        = "${var.name_prefix}/sweeps"
  description = "Successful /sweep calls answered by the tasks function."
  filter      = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"tasks\" AND httpRequest.requestUrl=~\"/sweep$\" AND httpRequest.status<300"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "dead_letters_waiting" {
  display_name          = "${var.name_prefix} ${var.env}: dead letters waiting"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "dead-letter subscription has undelivered messages"
    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${google_pubsub_subscription.dead_letter.name}\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "oldest_task_age" {
  display_name          = "${var.name_prefix} ${var.env}: oldest task age"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "tasks wait more than 5 minutes to be attempted (p99)"
    condition_threshold {
      filter          = "resource.type=\"cloud_tasks_queue\" AND resource.labels.queue_id=\"${google_cloud_tasks_queue.dispatch.name}\" AND metric.type=\"cloudtasks.googleapis.com/queue/task_attempt_delays\""
      comparison      = "COMPARISON_GT"
      threshold_value = 300000
      duration        = "300s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_PERCENTILE_99"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "function_5xx_ratio" {
  display_name          = "${var.name_prefix} ${var.env}: 5xx ratio per function"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "more than 5% of a function's requests answer 5xx"
    condition_prometheus_query_language {
      query               = "sum by (service_name) (rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\",response_code_class=\"5xx\"}[5m])) / sum by (service_name) (rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\"}[5m])) > 0.05"
      duration            = "300s"
      evaluation_interval = "60s"
    }
  }
}

resource "google_monitoring_alert_policy" "failed_job_executions" {
  display_name          = "${var.name_prefix} ${var.env}: failed job executions"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "a GPU-stage job execution failed"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_job\" AND metric.type=\"run.googleapis.com/job/completed_execution_count\" AND metric.labels.result=\"failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.job_name"]
      }
    }
  }
}

resource "google_monitoring_alert_policy" "sweep_absent" {
  display_name          = "${var.name_prefix} ${var.env}: sweep absent for 5 minutes"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "no successful /sweep in 5 minutes"
    condition_absent {
      filter   = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.sweeps.name}\""
      duration = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "dropped_malformed" {
  display_name          = "${var.name_prefix} ${var.env}: malformed tasks or messages dropped"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "a task or message was dropped as malformed"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.dropped_malformed.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }
}

# Every /sweep logs one line a stage, "queue age" with jsonPayload.oldest_waiting_age_s
# (handlers/task_requests.py log_queue_ages): how long the head of its queues has waited.
resource "google_logging_metric" "oldest_waiting_age" {
  name        = "${var.name_prefix}/oldest_waiting_age_s"
  description = "How long each stage's longest-waiting movie has waited, as the sweep measures it."
  filter      = "jsonPayload.logger=~\"^deepflix\" AND jsonPayload.message=\"queue age\" AND jsonPayload.oldest_waiting_age_s>=0"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "s"
    labels {
      key        = "stage"
      value_type = "STRING"
    }
  }
  value_extractor = "EXTRACT(jsonPayload.oldest_waiting_age_s)"
  label_extractors = {
    stage = "EXTRACT(jsonPayload.stage)"
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 32
      growth_factor      = 1.5
      scale              = 1
    }
  }
}

resource "google_monitoring_alert_policy" "oldest_waiting_movie" {
  display_name          = "${var.name_prefix} ${var.env}: oldest waiting movie over its objective"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "a stage's oldest waiting movie waits longer than ${var.waiting_slo_s}s"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.oldest_waiting_age.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.waiting_slo_s
      duration        = "120s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["metric.label.stage"]
      }
    }
  }
}

resource "google_monitoring_uptime_check_config" "healthz" {
  display_name = "${var.name_prefix} ${var.env}: api /healthz"
  timeout      = "10s"
  period       = "60s"

  http_check {
    path           = "/api/healthz"
    port           = 443
    use_ssl        = true
    validate_ssl   = true
    request_method = "GET"
    accepted_response_status_codes {
      status_class = "STATUS_CLASS_2XX"
    }
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project
      host       = "${var.region}-${var.project}.cloudfunctions.net"
    }
  }
}

resource "google_monitoring_alert_policy" "healthz_down" {
  display_name          = "${var.name_prefix} ${var.env}: api /healthz failing"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "uptime check fails"
    condition_threshold {
      filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type=\"uptime_url\" AND metric.labels.check_id=\"${google_monitoring_uptime_check_config.healthz.uptime_check_id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "300s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.labels.host"]
      }
    }
  }
}

locals {
  dashboard_tiles = [
    ["Cloud Tasks queue depth", "resource.type=\"cloud_tasks_queue\" AND metric.type=\"cloudtasks.googleapis.com/queue/depth\"", "ALIGN_MEAN", ["resource.labels.queue_id"]],
    ["Stage requests waiting (Pub/Sub undelivered)", "resource.type=\"pubsub_subscription\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\"", "ALIGN_MEAN", ["resource.labels.subscription_id"]],
    ["Oldest stage request age (s)", "resource.type=\"pubsub_subscription\" AND metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\"", "ALIGN_MAX", ["resource.labels.subscription_id"]],
    ["Throughput per stage (requests published/s)", "resource.type=\"pubsub_topic\" AND metric.type=\"pubsub.googleapis.com/topic/send_message_operation_count\"", "ALIGN_RATE", ["resource.labels.topic_id"]],
    ["Stage failures", "metric.type=\"logging.googleapis.com/user/${google_logging_metric.stage_failed.name}\"", "ALIGN_RATE", ["metric.labels.stage"]],
    ["5xx per function", "resource.type=\"cloud_run_revision\" AND metric.type=\"run.googleapis.com/request_count\" AND metric.labels.response_code_class=\"5xx\"", "ALIGN_RATE", ["resource.labels.service_name"]],
    ["Job executions by result", "resource.type=\"cloud_run_job\" AND metric.type=\"run.googleapis.com/job/completed_execution_count\"", "ALIGN_SUM", ["resource.labels.job_name", "metric.labels.result"]],
    ["Dead letters waiting", "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${google_pubsub_subscription.dead_letter.name}\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\"", "ALIGN_MAX", []],
  ]
}

resource "google_monitoring_dashboard" "main" {
  dashboard_json = jsonencode({
    displayName = "DeepFlix (${var.env})"
    mosaicLayout = {
      columns = 12
      tiles = [
        for i, t in local.dashboard_tiles : {
          xPos   = (i % 2) * 6
          yPos   = floor(i / 2) * 4
          width  = 6
          height = 4
          widget = {
            title = t[0]
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = t[1]
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = t[2]
                      crossSeriesReducer = "REDUCE_SUM"
                      groupByFields      = t[3]
                    }
                  }
                }
              }]
            }
          }
        }
      ]
    }
  })
}
