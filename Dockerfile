# Burrow on SQLite in a container: one process, its data in the /data volume.
#
#   docker build -t burrow .
#   docker volume create burrow-data
#   docker run --rm -v burrow-data:/data burrow keys add --file /data/keys.json --account acme --role writer
#   docker run -d --name burrow -p 8080:8080 -v burrow-data:/data burrow
#
# The first `run` prints a token (once); the server then requires one (docs/security.md).
# Every setting can be given as an environment variable, e.g.
# `-e BURROW_BACKEND=redis://redis:6379/0` or `-e BURROW_LIMITS_MAX_BODY_BYTES=1048576`
# (deploy/burrow.toml lists them all), or mount a config file and add `--config`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package is built from; every dependency has a wheel, so no compiler.
COPY pyproject.toml README.md LICENSE /src/
COPY src /src/src
RUN pip install /src && rm -rf /src

# A user of its own, which owns the data volume (a bind-mounted directory must be
# writable by uid 10001).
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin burrow \
    && mkdir /data && chown burrow:burrow /data
USER burrow
WORKDIR /data
VOLUME /data

# Environment rather than flags, so `docker run -e BURROW_…` can change any of them.
ENV BURROW_HOST=0.0.0.0 \
    BURROW_PORT=8080 \
    BURROW_BACKEND=sqlite:////data/burrow.db \
    BURROW_AUTH=keys:/data/keys.json
EXPOSE 8080

# The slim image has no curl: ask /health with Python, on BURROW_PORT (change the port
# with `-e BURROW_PORT=…`, not a flag, so that this follows).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('BURROW_PORT', '8080'), timeout=4)"]

# SIGTERM (docker stop) shuts down gracefully: long polls are answered, SQLite is closed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["burrow"]
CMD ["serve"]
