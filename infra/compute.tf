# 2nd-gen functions: one per entry point of functions/main.py, each with its own identity.
locals {
  function_entry = {
    api              = { ingress = "ALLOW_ALL", sa = "api" }
    tasks            = { ingress = "ALLOW_INTERNAL_ONLY", sa = "tasks" }
    story_requested  = { ingress = "ALLOW_INTERNAL_ONLY", sa = "story" }
    images_requested = { ingress = "ALLOW_INTERNAL_ONLY", sa = "images" }
    video_requested  = { ingress = "ALLOW_INTERNAL_ONLY", sa = "video" }
  }
}

resource "google_cloudfunctions2_function" "fn" {
  # checkov:skip=CKV_GCP_124: only the public api function allows all ingress (it is the product's HTTPS endpoint); tasks and the stage functions are ALLOW_INTERNAL_ONLY, as tests/unit/test_infra.py checks

  for_each = local.function_entry
  name     = each.key
  location = var.region
  labels   = local.labels

  build_config {
    runtime     = "python311"
    entry_point = each.key
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    available_memory                 = var.functions[each.key].memory
    available_cpu                    = var.functions[each.key].cpu
    timeout_seconds                  = local.function_timeout_s[each.key]
    min_instance_count               = var.functions[each.key].min_instances
    max_instance_count               = var.functions[each.key].max_instances
    max_instance_request_concurrency = var.functions[each.key].concurrency
    ingress_settings                 = each.value.ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.runtime[each.value.sa].email
    # Only what runs a model (the story function, the jobs) uses var.generators: the others
    # never generate, so they neither need nor may read the key.
    environment_variables = merge(
      local.common_env,
      each.key == "story_requested" ? { DEEPFLIX_GENERATORS = var.generators } : {},
    )

    # The story function calls the text model: its key from Secret Manager (infra/secrets.tf).
    dynamic "secret_environment_variables" {
      for_each = each.key == "story_requested" && var.generators == "gemini" ? [1] : []
      content {
        key        = "DEEPFLIX_GENAI_API_KEY"
        project_id = var.project
        secret     = google_secret_manager_secret.genai_api_key.secret_id
        version    = "latest"
      }
    }
  }

  depends_on = [google_project_service.apis]
}

# Cloud Run jobs for the GPU stages. One task, never retried by Cloud Run: the pipeline
# decides every retry (a new attempt, a new execution).
resource "google_cloud_run_v2_job" "stage" {
  for_each            = local.job_ids
  name                = each.value
  location            = var.region
  labels              = local.labels
  deletion_protection = false

  template {
    task_count  = 1
    parallelism = 1

    template {
      max_retries     = 0
      timeout         = "${var.stage_timeout_s[each.key] + 60}s"
      service_account = google_service_account.runtime["job"].email

      dynamic "node_selector" {
        for_each = var.job_gpu[each.key].count > 0 ? [1] : []
        content {
          accelerator = var.job_gpu[each.key].accelerator
        }
      }

      containers {
        image   = local.job_image
        command = ["python", "-m", "deepflix.entrypoints.job"]

        resources {
          limits = merge(
            { cpu = var.job_gpu[each.key].cpu, memory = var.job_gpu[each.key].memory },
            var.job_gpu[each.key].count > 0 ? { "nvidia.com/gpu" = tostring(var.job_gpu[each.key].count) } : {},
          )
        }

        dynamic "env" {
          for_each = local.common_env
          content {
            name  = env.key
            value = env.value
          }
        }

        env {
          name  = "DEEPFLIX_GENERATORS"
          value = var.generators
        }

        # The jobs call the image model: the key from Secret Manager (infra/secrets.tf).
        dynamic "env" {
          for_each = var.generators == "gemini" ? ["DEEPFLIX_GENAI_API_KEY"] : []
          content {
            name = env.value
            value_source {
              secret_key_ref {
                secret  = google_secret_manager_secret.genai_api_key.secret_id
                version = "latest"
              }
            }
          }
        }
      }
    }
  }

  depends_on = [google_project_service.apis]
}
