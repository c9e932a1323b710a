# terraform plan -var-file=envs/prod.tfvars -var=project=<your-prod-project>
env                      = "prod"
region                   = "us-central1"
firestore_location       = "nam5"
artifacts_retention_days = 30
registry_keep_versions   = 10
# Set to the ids of existing channels: projects/<project>/notificationChannels/<id>
notification_channels = []

functions = {
  api              = { memory = "512Mi", cpu = "1", min_instances = 1, max_instances = 20, concurrency = 40 }
  tasks            = { memory = "512Mi", cpu = "1", min_instances = 1, max_instances = 20, concurrency = 20 }
  story_requested  = { memory = "1Gi", cpu = "1", min_instances = 0, max_instances = 10, concurrency = 4 }
  images_requested = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 10, concurrency = 10 }
  video_requested  = { memory = "512Mi", cpu = "1", min_instances = 0, max_instances = 10, concurrency = 10 }
}

job_gpu = {
  images = { accelerator = "nvidia-l4", count = 1, cpu = "4", memory = "16Gi" }
  video  = { accelerator = "nvidia-l4", count = 1, cpu = "4", memory = "16Gi" }
}
