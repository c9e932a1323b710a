# terraform init -backend-config=envs/prod.backend.hcl (the bucket must exist)
bucket = "CHANGE-ME-prod-tfstate"
prefix = "deepflix/prod"
