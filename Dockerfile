# syntax=docker/dockerfile:1
#
# Leash container image: `docker build -t leash .`
#
# Two stages on the same pinned Python base. The builder installs uv and resolves the locked
# runtime dependencies (uv.lock, no dev group, no `sandbox` extra) plus Leash itself,
# non-editable, into /app/.venv. The runtime stage copies only that virtualenv: no uv, no pip,
# no compiler, no source tree, and no emulator: moto, flask and the sandbox's other
# dependencies are not installed, so `leash serve --sandbox` in the image says how to add them.
#
# The base is pinned to a patch release. To pin it immutably as well, resolve the digest of
# the multi-platform index and append it, e.g.
#   docker buildx imagetools inspect python:3.11.17-slim-bookworm   # "Digest: sha256:..."
#   ARG PYTHON_IMAGE=python:3.11.17-slim-bookworm@sha256:<that digest>
# (or pass --build-arg PYTHON_IMAGE=...). Bump tag and digest together.
ARG PYTHON_IMAGE=python:3.11.17-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /src

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project --no-editable

# Then Leash itself, built as a wheel (hatchling) and installed into the same venv. The wheel
# carries bot/leash.example.toml and bot/store/migrations, which Leash reads at run time.
COPY README.md ./
COPY bot ./bot
COPY cloud ./cloud
COPY scheduler ./scheduler
RUN uv sync --frozen --no-dev --no-editable \
    && /app/.venv/bin/python -c "import importlib.util as u, sys; \
extra = [m for m in ('moto', 'flask', 'flask_cors', 'celpy') if u.find_spec(m)]; \
sys.exit(f'the sandbox extra leaked into the image: {extra}' if extra else 0)"


FROM ${PYTHON_IMAGE} AS runtime

# A fixed numeric user, so Kubernetes can check runAsNonRoot; /var/lib/leash is its only
# writable directory (the SQLite database when no PostgreSQL is configured). pip, setuptools
# and wheel are removed from the base interpreter: nothing installs at run time.
RUN groupadd --system --gid 10001 leash \
    && useradd --system --uid 10001 --gid leash --home-dir /var/lib/leash --no-create-home \
        --shell /usr/sbin/nologin leash \
    && mkdir -p /var/lib/leash \
    && chown leash:leash /var/lib/leash \
    && chmod 0750 /var/lib/leash \
    && python -m pip uninstall --yes --quiet pip setuptools wheel

# Owned by root and not writable by the service user.
COPY --from=builder /app/.venv /app/.venv

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LEASH_HOST=0.0.0.0 \
    LEASH_PORT=8080 \
    LEASH_DATABASE_URL=sqlite+aiosqlite:////var/lib/leash/leash.db

WORKDIR /var/lib/leash
USER 10001:10001
EXPOSE 8080

# Python's standard library only (the image has no curl); urlopen raises, and so exits
# non-zero, on a refused connection, a timeout or an HTTP error status.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LEASH_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["leash"]
CMD ["serve", "--no-console"]
