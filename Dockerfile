# One image, every entrypoint: `stellar-carbon-webhook`, `stellar-carbon-reporter`,
# `stellar-carbon-tiers` and `stellar-carbon-multicluster`.
# Build: docker build -t stellar-carbon:dev .
# BASE: any Debian bookworm image with python3.11 (and python3-venv) as `python`, e.g. one made with
# debootstrap where no registry image can be pulled (docs in the README's Development section).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE NOTICE ./
COPY shared ./shared
COPY webhook ./webhook
COPY reporter ./reporter
COPY tiers ./tiers
COPY multicluster ./multicluster
RUN python -m venv /opt/stellar-carbon \
 && /opt/stellar-carbon/bin/pip install --no-compile . \
 && find /opt/stellar-carbon -name '__pycache__' -prune -exec rm -rf {} +

FROM ${BASE}
LABEL org.opencontainers.image.title="stellar-carbon" \
      org.opencontainers.image.description="Carbon-aware placement for Stellar read-pool pods" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/stellar-carbon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/stellar-carbon /opt/stellar-carbon
# The licence and the data attributions, also inside the installed package's metadata.
COPY LICENSE NOTICE /usr/share/doc/stellar-carbon/
# The distroless-style non-root user the chart's securityContext expects.
USER 65532:65532
EXPOSE 8443 8080 9090 8081
ENTRYPOINT []
CMD ["stellar-carbon-reporter"]
