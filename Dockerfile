# The streamwatch image: the CLI with the workers, the embedded broker for the demo, and pinned dependencies.
#   docker build -t streamwatch .
#   docker run --rm streamwatch --help
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, pinned by constraints.txt, so that code changes reuse this layer.
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# The wheel force-includes the ClickHouse schema files (pyproject.toml): without them hatchling stops.
COPY schemas/clickhouse ./schemas/clickhouse
RUN pip install -c constraints.txt '.[worker,demo]'

COPY examples ./examples
COPY deploy/streamwatch.yaml /etc/streamwatch/streamwatch.yaml

# /profiles exists in the image, owned by the user: Docker makes a new named volume mounted there from it,
# with its owner. Without it the volume's root was root's, and `init` (uid 10001) could not write the profiles.
RUN groupadd --gid 10001 streamwatch && useradd --create-home --uid 10001 --gid 10001 streamwatch \
    && mkdir -p /data /profiles && chown 10001:10001 /data /profiles
# By number: Kubernetes' runAsNonRoot can only verify a numeric user (and hadolint asks for one).
USER 10001:10001
WORKDIR /data

# /metrics and /health of `streamwatch worker`
EXPOSE 6066
ENTRYPOINT ["streamwatch"]
CMD ["--help"]
