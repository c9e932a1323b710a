# The GPU-stage job image (Cloud Run jobs deepflix-images / deepflix-video).
# Build from the repository root: docker build -t <registry>/deepflix-job:<tag> .
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

COPY functions/requirements.txt /app/requirements.txt
RUN pip install --no-compile -r /app/requirements.txt \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin deepflix

COPY --chown=root:root functions/deepflix /app/deepflix

USER 10001

CMD ["python", "-m", "deepflix.entrypoints.job"]
