# syntax=docker/dockerfile:1
# Bulwark in a container: `bulwark serve` as an unprivileged user, its data
# directory a volume.
#
#   docker build -t bulwark .
#   docker run -d --name bulwark -p 8080:8080 \
#     -v bulwark-data:/var/lib/bulwark \
#     -v "$PWD/bulwark.toml:/etc/bulwark/bulwark.toml:ro" \
#     --env-file bulwark.env bulwark
#
# Without a mounted bulwark.toml it runs the embedded default and prints a
# new admin key once (docker logs bulwark). Repository commands run the same
# binary: docker run --rm -e BULWARK_PASSWORD ... bulwark snapshots -r REPO.
# A `kind = "postgres"` backup needs pg_dump: build FROM this image and add
# postgresql-client.

# --- build -------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build between builds; the binary
# is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p bulwark \
    && install -D -m 0755 target/release/bulwark /out/bulwark

# --- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim
# CA roots for HTTPS probes, object stores and webhooks; nothing else (no
# restic: Bulwark reads and writes the format itself).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed uid and gid, so a bind-mounted data directory can be chowned to
# them ahead of time (chown -R 10001:10001 DIR).
RUN groupadd --system --gid 10001 bulwark \
    && useradd --system --uid 10001 --gid bulwark --no-create-home \
        --home-dir /var/lib/bulwark --shell /usr/sbin/nologin bulwark \
    && install -d -o bulwark -g bulwark -m 0700 /var/lib/bulwark /var/cache/bulwark \
    && install -d -m 0755 /etc/bulwark
COPY --from=build /out/bulwark /usr/local/bin/bulwark

# The config is ./bulwark.toml (optional: without it the embedded default
# runs), hence the working directory; BULWARK_CONFIG would make it required.
WORKDIR /etc/bulwark
ENV BULWARK_DATA_DIR=/var/lib/bulwark \
    BULWARK_LISTEN=0.0.0.0:8080 \
    XDG_CACHE_HOME=/var/cache
USER 10001:10001
VOLUME /var/lib/bulwark
EXPOSE 8080

# GET /healthz on the listening port with bash's /dev/tcp: the image needs
# no curl, and the check is "the process serves", not "every monitor is up"
# (that is /healthz/strict and the alerts' job).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>\"/dev/tcp/127.0.0.1/${BULWARK_LISTEN##*:}\" && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r status <&3 && [[ $status == HTTP/1.[01]' 200'* ]]"]

ENTRYPOINT ["bulwark"]
CMD ["serve"]
