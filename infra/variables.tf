variable "project" {
  description = "Google Cloud project id (never a demo- project: those are for the emulators)."
  type        = string

  validation {
    condition     = !startswith(var.project, "demo-")
    error_message = "demo- projects are emulator-only."
  }
}

variable "env" {
  description = "Environment name: dev or prod."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.env)
    error_message = "env is dev or prod."
  }
}

variable "region" {
  description = "Region of every regional resource; DEEPFLIX_GCP_LOCATION."
  type        = string
  default     = "us-central1"
}

variable "firestore_location" {
  description = "Firestore location (a region or a multi-region such as nam5)."
  type        = string
  default     = "nam5"
}

# Names: the same inputs the code derives its names from (functions/deepflix/settings.py).
variable "tasks_queue" {
  description = "DEEPFLIX_TASKS_QUEUE: the Cloud Tasks queue id."
  type        = string
  default     = "deepflix-dispatch"
}

variable "topic_prefix" {
  description = "DEEPFLIX_TOPIC_PREFIX: topic ids are <prefix>-<stage>-requested."
  type        = string
  default     = "deepflix"
}

variable "run_job_prefix" {
  description = "DEEPFLIX_RUN_JOB_PREFIX: Cloud Run job ids are <prefix>-<stage>."
  type        = string
  default     = "deepflix"
}

variable "name_prefix" {
  description = "Prefix of service accounts, buckets, the registry and monitoring names."
  type        = string
  default     = "deepflix"
}

variable "stage_timeout_s" {
  description = "DEEPFLIX_<STAGE>_TIMEOUT_S; every function and job timeout is derived above these."
  type        = map(number)
  default = {
    story  = 60
    images = 300
    video  = 600
  }
}

variable "functions" {
  description = "Per-function sizing: memory, CPU, instances, concurrency."
  type = map(object({
    memory        = string
    cpu           = string
    min_instances = number
    max_instances = number
    concurrency   = number
  }))
  default = {
    api              = { memory = "512Mi", cpu = "1", min_instances = 1, max_instances = 20, concurrency = 40 }
    tasks            = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 20, concurrency = 20 }
    story_requested  = { memory = "1Gi", cpu = "1", min_instances = 0, max_instances = 10, concurrency = 4 }
    images_requested = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 10, concurrency = 10 }
    video_requested  = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 10, concurrency = 10 }
  }
}

variable "job_image" {
  description = "The GPU-stage job image in Artifact Registry (with tag or digest); empty: <registry>/deepflix-job:latest."
  type        = string
  default     = ""
}

variable "job_gpu" {
  description = "GPU per job stage: accelerator type and count (count 0: CPU only)."
  type = map(object({
    accelerator = string
    count       = number
    cpu         = string
    memory      = string
  }))
  default = {
    images = { accelerator = "nvidia-l4", count = 1, cpu = "4", memory = "16Gi" }
    video  = { accelerator = "nvidia-l4", count = 1, cpu = "4", memory = "16Gi" }
  }
}

variable "tasks_rate" {
  description = "Cloud Tasks queue rate limits."
  type = object({
    max_dispatches_per_second = number
    max_concurrent_dispatches = number
  })
  default = {
    max_dispatches_per_second = 50
    max_concurrent_dispatches = 100
  }
}

variable "artifacts_retention_days" {
  description = "Artifacts older than this are deleted by the bucket's lifecycle."
  type        = number
  default     = 30
}

variable "registry_keep_versions" {
  description = "Artifact Registry cleanup: the most recent image versions kept."
  type        = number
  default     = 10
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) every alert goes to."
  type        = list(string)
  default     = []
}

variable "trace_export" {
  description = "Export OpenTelemetry spans to Cloud Trace (DEEPFLIX_TRACE_EXPORT); trace ids reach the logs either way."
  type        = bool
  default     = false
}

variable "waiting_slo_s" {
  description = "Objective: the oldest waiting movie of a stage waits no longer than this."
  type        = number
  default     = 600
}

variable "sweep_schedule" {
  description = "Cloud Scheduler cron of the /sweep call."
  type        = string
  default     = "* * * * *"
}

variable "generators" {
  description = "DEEPFLIX_GENERATORS: cpu (no model, no key) or gemini (the Gemini API, its key from Secret Manager)"
  type        = string
  default     = "cpu"
  validation {
    condition     = contains(["cpu", "gemini"], var.generators)
    error_message = "generators is cpu or gemini."
  }
}

variable "quotas" {
  description = "Per-owner movies in progress and creates per minute, and the global queue cap (0: none)"
  type = object({
    active_movies      = number
    creates_per_minute = number
    queue_cap          = number
  })
  default = {
    active_movies      = 5
    creates_per_minute = 10
    queue_cap          = 10000
  }
}
