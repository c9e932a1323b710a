# Generator API keys live in Secret Manager, never in source, state or the function upload.
# Terraform declares the secret and who may read it; its value is added out of band:
#   printf %s "$KEY" | gcloud secrets versions add deepflix-genai-api-key --data-file=-
# The code runs with DEEPFLIX_GENERATORS=gemini only where the secret is mounted (the
# story function writes the story; the jobs draw and render).
locals {
  genai_key_readers = var.generators == "gemini" ? ["story", "job"] : []
}

resource "google_secret_manager_secret" "genai_api_key" {
  secret_id = "${var.name_prefix}-genai-api-key"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_iam_member" "genai_api_key_reader" {
  for_each  = toset(local.genai_key_readers)
  secret_id = google_secret_manager_secret.genai_api_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime[each.key].email}"
}
