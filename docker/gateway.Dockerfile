# The gateway: the base image plus its command and a health check on its HTTP API.
# Build from the repository root (after the base image):
#   docker build -f docker/gateway.Dockerfile -t timex-stream-gateway:0.1.0 .
ARG BASE_IMAGE=timex-stream-base:0.1.0
FROM ${BASE_IMAGE}
# HTTP API with GET /health and /metrics; 0.0.0.0: reachable from outside the container.
ENV TIMEX_GATEWAY_HOST=0.0.0.0 \
    TIMEX_GATEWAY_PORT=8000
EXPOSE 8000
USER timex
# python's urllib: the slim image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TIMEX_GATEWAY_PORT', '8000') + '/health', timeout=3)"]
ENTRYPOINT ["timex-stream", "service", "gateway"]
CMD []
