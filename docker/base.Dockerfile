# The base image: Python, every pinned dependency and the project's packages (schemas, forecasting,
# timex_stream and the services) in /opt/timex; the service images only add their command and health check.
# Build from the repository root:  docker build -f docker/base.Dockerfile -t timex-stream-base:0.1.0 .
# Every dependency installs from a manylinux wheel (prophet, cmdstanpy, statsforecast included), so the
# build compiles nothing and needs little memory; the slim image has no compiler, so a missing wheel fails
# the build instead of starting a RAM-hungry compilation.

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PREFER_BINARY=1
WORKDIR /src
# A venv without pip: the runtime stage copies it and gets no installer with it.
RUN python -m venv --without-pip /opt/timex
COPY pyproject.toml constraints.txt README.md ./
# Dependencies first, in their own layer: a code change does not reinstall them.
# EXTRAS: optional dependency groups to carry ("lstm": JAX for the lstm model, ~390 MB; blank for a lean image,
# whose predictor then fails lstm units naming the extra).
ARG EXTRAS=lstm
RUN python -c "import tomllib, sys; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + [d for e in sys.argv[1].split(',') if e for d in p['optional-dependencies'][e]]))" \
        "$EXTRAS" > /tmp/requirements.txt \
    && pip --python /opt/timex/bin/python install -c constraints.txt -r /tmp/requirements.txt
COPY schemas ./schemas
COPY forecasting ./forecasting
COPY timex_stream ./timex_stream
COPY ingestion ./ingestion
COPY predictor ./predictor
COPY validator ./validator
COPY live ./live
COPY gateway ./gateway
COPY webapp ./webapp
RUN pip --python /opt/timex/bin/python install -c constraints.txt . \
    && /opt/timex/bin/timex-stream --help > /dev/null

FROM python:3.11.14-slim-bookworm AS base
# No installer in the final image: the system pip goes, the venv never had one.
RUN python -m pip uninstall -y -q pip setuptools wheel \
    && groupadd --system --gid 10001 timex \
    && useradd --system --uid 10001 --gid timex --home-dir /home/timex --create-home timex \
    && mkdir -p /var/lib/timex \
    && chown timex:timex /var/lib/timex
COPY --from=build /opt/timex /opt/timex
# TIMEX_DATA_DIR: Faust's per-process state directory (writable; an emptyDir on Kubernetes).
# MPLCONFIGDIR: matplotlib (imported by prophet) wants a writable config dir; the root file system may be read-only.
ENV PATH=/opt/timex/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TIMEX_DATA_DIR=/var/lib/timex \
    TIMEX_CACHE_DIR=/var/lib/timex/cache \
    MPLCONFIGDIR=/tmp/matplotlib
USER timex
WORKDIR /home/timex
# The base image runs one-shot commands (`timex-stream topics`); its check proves the install imports.
HEALTHCHECK --interval=30s --timeout=10s --retries=3 CMD ["python", "-c", "import timex_stream.tools.cli"]
ENTRYPOINT ["timex-stream"]
CMD ["--help"]
