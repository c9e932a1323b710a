"""Google Cloud adapters: Firestore, Cloud Tasks, Pub/Sub, Cloud Run jobs, Cloud Storage."""
