# pagebridge in a container.  UNTESTED: Docker cannot run where this project
# is built; written with care, never built.  See docs/deploy.md.
#
#   docker build -t pagebridge .
#   docker run --rm -p 8765:8765 -e PAGEBRIDGE_TOKEN=... -v /srv/files:/data:ro pagebridge
#   docker run --rm -p 8765:8765 -e PAGEBRIDGE_TOKEN=... -e AWS_ACCESS_KEY_ID=... \
#       -e AWS_SECRET_ACCESS_KEY=... -e AWS_DEFAULT_REGION=... pagebridge s3://bucket/prefix

# --- build: the wheel ships the viewer, whose npm modules come from web/package-lock.json
FROM python:3.12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY web/package.json web/package-lock.json web/
RUN cd web && npm ci --no-audit --no-fund
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- run: the package with its S3 extra, an unprivileged user, one port
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install "$(ls /wheels/pagebridge-*.whl)[s3,fast]" && rm -rf /wheels \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin pagebridge \
 && mkdir /data
USER pagebridge
EXPOSE 8765
VOLUME ["/data"]
# 0.0.0.0 inside the container: a token is required (PAGEBRIDGE_TOKEN), or it refuses to start.
# The supervisor of --workers stops its workers on SIGTERM (docker stop).
ENTRYPOINT ["pagebridge", "serve", "--host", "0.0.0.0", "--port", "8765", "--log-json"]
CMD ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8765/healthz', timeout=4).status != 200)"]
