# syntax=docker/dockerfile:1
# The sidecar image: `sidelight sidecar`, which the operator injects into
# the pods of opted-in namespaces (its startup probe runs `python`, which
# this image has).
#
#   docker build -f docker/sidecar.Dockerfile -t ghcr.io/sidelight/sidecar:0.1.0 .
#
# Built from the repository root. The first stage builds the wheels of
# Sidelight and its dependencies, without the operator's (kopf, kubernetes);
# the final stage installs them from there (no index, no compiler) and runs
# as an unprivileged user, ready for a read-only root filesystem.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protos protos
COPY operator operator
COPY sidecar sidecar
COPY cli cli
COPY fake_provider fake_provider
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin sidelight
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "sidelight==${VERSION}"
USER 10001:10001
ENTRYPOINT ["sidelight"]
CMD ["sidecar", "--help"]
