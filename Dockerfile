# One image, every entrypoint: `stellar-carbon-webhook`, `stellar-carbon-reporter` and
# `stellar-carbon-tiers`.
# Build: docker build -t stellar-carbon:dev .

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY webhook ./webhook
COPY reporter ./reporter
COPY tiers ./tiers
RUN python -m venv /opt/stellar-carbon \
 && /opt/stellar-carbon/bin/pip install --no-compile . \
 && find /opt/stellar-carbon -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="stellar-carbon" \
      org.opencontainers.image.description="Carbon-aware placement for Stellar read-pool pods" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/stellar-carbon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/stellar-carbon /opt/stellar-carbon
# The distroless-style non-root user the chart's securityContext expects.
USER 65532:65532
EXPOSE 8443 8080 9090 8081
ENTRYPOINT []
CMD ["stellar-carbon-reporter"]
