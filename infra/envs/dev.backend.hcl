# terraform init -backend-config=envs/dev.backend.hcl (the bucket must exist)
bucket = "CHANGE-ME-dev-tfstate"
prefix = "deepflix/dev"
