# respq in a container: data in the /data volume, port 6379, running as an unprivileged user.
#   docker build -t respq .
#   docker run -p 6379:6379 -v respq-data:/data respq
# Extra arguments replace the default ones below, so repeat them:
#   docker run respq /etc/respq.conf --bind 0.0.0.0 --dir /data --protected-mode no
# The C request parser (respq/_speedups.c) is compiled in a build stage, so the image carries no compiler.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md /src/
COPY respq /src/respq
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels /src

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies come as binary wheels (crc32c included).
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin respq \
    && mkdir /data && chown respq:respq /data
USER respq
WORKDIR /data
VOLUME /data
EXPOSE 6379

# respq exits cleanly (storage flushed and synced) on SIGTERM, which is what `docker stop` sends.
ENTRYPOINT ["respq", "serve"]
# Clients reach the container from outside its loopback, which protected mode would refuse while no password is
# set (as in the official Redis image). Set --requirepass, or keep the port unpublished, before exposing it.
CMD ["--bind", "0.0.0.0", "--dir", "/data", "--protected-mode", "no"]
