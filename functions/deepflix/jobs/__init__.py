"""Job entry points: the GPU stages' work, run by Cloud Run jobs or local subprocesses."""
