# The live service (standing requests: forecast revisions): the base image plus its command and a health check on its Faust web server.
# Build from the repository root (after the base image):
#   docker build -f docker/live.Dockerfile -t timex-stream-live:0.1.0 .
ARG BASE_IMAGE=timex-stream-base:0.1.0
FROM ${BASE_IMAGE}
# Health and Prometheus metrics on GET /health and /metrics; 0.0.0.0: reachable from outside the container.
ENV TIMEX_WEB_HOST=0.0.0.0 \
    TIMEX_WEB_PORT=6066
EXPOSE 6066
USER timex
# python's urllib: the slim image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TIMEX_WEB_PORT', '6066') + '/health', timeout=3)"]
ENTRYPOINT ["timex-stream", "service", "live"]
CMD []
