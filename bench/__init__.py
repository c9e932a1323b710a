"""DeepFlix benchmark suite: `make bench` or `python bench/run.py`."""
