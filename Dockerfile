# Build: the daemon and every plugin, release profile.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libssl-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --workspace --locked \
 && mkdir -p /out/plugins \
 && cp target/release/tributary /out/ \
 && cp target/release/libtributary_*.so /out/plugins/

# Run: a slim image with the binary, the plugins and an unprivileged user;
# curl serves the compose health check against /health.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 curl && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/tributary tributary \
 && mkdir -p /var/lib/tributary /etc/tributary/conf.d && chown tributary /var/lib/tributary
COPY --from=build /out/tributary /usr/bin/tributary
COPY --from=build /out/plugins/ /usr/lib/tributary/plugins/
USER tributary
EXPOSE 9464
ENTRYPOINT ["/usr/bin/tributary"]
CMD ["run", "--config", "/etc/tributary/tributary.toml"]
