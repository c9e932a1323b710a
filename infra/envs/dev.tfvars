# terraform plan -var-file=envs/dev.tfvars -var=project=<your-dev-project>
env                      = "dev"
region                   = "us-central1"
firestore_location       = "nam5"
artifacts_retention_days = 7
registry_keep_versions   = 5
notification_channels    = []

functions = {
  api              = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 3, concurrency = 40 }
  tasks            = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 3, concurrency = 20 }
  story_requested  = { memory = "1Gi", cpu = "1", min_instances = 0, max_instances = 3, concurrency = 4 }
  images_requested = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 3, concurrency = 10 }
  video_requested  = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 3, concurrency = 10 }
}

job_gpu = {
  images = { accelerator = "nvidia-l4", count = 0, cpu = "2", memory = "4Gi" }
  video  = { accelerator = "nvidia-l4", count = 0, cpu = "2", memory = "4Gi" }
}
