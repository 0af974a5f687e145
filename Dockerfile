FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    COACH_DATA_DIR=/data

# Fonts for Korean captions in report keyframes; libgl/glib for OpenCV and MediaPipe.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-cjk libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /srv
COPY pyproject.toml README.md ./
COPY app ./app
# EXTRAS="[scale]" adds PostgreSQL, Redis and Celery (docker-compose.yml does).
ARG EXTRAS=""
RUN pip install ".${EXTRAS}"
COPY static ./static
COPY prompts ./prompts

RUN useradd --create-home --uid 10001 coach && mkdir -p /data && chown coach /data
USER coach
VOLUME ["/data"]
EXPOSE 8000
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--ws-per-message-deflate", "false"]
