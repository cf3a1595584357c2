# The image lakeops' flow runs start from on ECS (prefect.ecs.yaml): the project and its dependencies
# installed, the flows and the registry in /opt/lakeops, where each run's pull step sets its working directory.
# The ECS worker starts `prefect flow-run execute` in it with PREFECT_API_URL and the run's environment.
#   docker build --build-arg LAKEOPS_CODE_VERSION=git:$(git rev-parse --short=12 HEAD) -t "$LAKEOPS_IMAGE" .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/lakeops

# Only what the package and the flow runs need: no .venv, .lakeops or .git from the build context.
COPY pyproject.toml README.md datasets.yaml ./
COPY lakeops ./lakeops
COPY declarations ./declarations
COPY flows ./flows
COPY blocks ./blocks
COPY admin ./admin
RUN pip install . \
    && useradd --create-home --uid 10001 lakeops \
    && chown -R lakeops /opt/lakeops

# The code version flow runs record in their commits' provenance (a deployment's env may set it too).
ARG LAKEOPS_CODE_VERSION=unknown
ENV LAKEOPS_CODE_VERSION=${LAKEOPS_CODE_VERSION}

USER lakeops
CMD ["prefect", "flow-run", "execute"]
