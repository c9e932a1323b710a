output "api_url" {
  value = google_cloudfunctions2_function.fn["api"].url
}

output "tasks_url" {
  value = local.function_url["tasks"]
}

output "job_image" {
  value = local.job_image
}

output "registry" {
  value = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}

output "artifacts_bucket" {
  value = google_storage_bucket.artifacts.name
}

output "dashboard" {
  value = "https://console.cloud.google.com/monitoring/dashboards/builder/${element(split("/", google_monitoring_dashboard.main.id), 3)}?project=${var.project}"
}
