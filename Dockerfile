# Builds the worker and the admin CLI. `docker compose up --scale worker=8` runs eight workers.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p underling-worker -p underling-cli

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/underling-worker /usr/local/bin/underling-worker
COPY --from=build /src/target/release/underling /usr/local/bin/underling
ENV RUST_LOG=info
ENTRYPOINT ["underling-worker"]
