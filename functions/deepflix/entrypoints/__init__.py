"""Entry points: the Cloud Functions, the job command and the CLI."""
