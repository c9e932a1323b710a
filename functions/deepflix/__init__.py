"""DeepFlix queue service: movie requests driven through story, images and video."""
