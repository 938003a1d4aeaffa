# The Dash webapp: the base image plus its command and a health check; it only talks HTTP to the gateway.
# Build from the repository root (after the base image):
#   docker build -f docker/webapp.Dockerfile -t timex-stream-webapp:0.1.0 .
ARG BASE_IMAGE=timex-stream-base:0.1.0
FROM ${BASE_IMAGE}
# 0.0.0.0: reachable from outside the container; TIMEX_GATEWAY_URL is set by the deployment.
ENV TIMEX_WEBAPP_HOST=0.0.0.0 \
    TIMEX_WEBAPP_PORT=5000
EXPOSE 5000
USER timex
# python's urllib: the slim image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TIMEX_WEBAPP_PORT', '5000') + '/health', timeout=3)"]
ENTRYPOINT ["timex-stream", "service", "webapp"]
CMD []
