# Builds the worker and the admin CLI. `docker compose up --scale worker=8` runs eight workers.
#
# Dependencies are built in a layer of their own (cargo-chef), from a recipe made of the
# manifests and the lock file only: a change to underling's code rebuilds underling, not sqlx
# and tokio.
FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --recipe-path recipe.json
COPY . .
RUN cargo build --release -p underling-worker -p underling-cli

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/underling --create-home underling
COPY --from=build /src/target/release/underling-worker /usr/local/bin/underling-worker
COPY --from=build /src/target/release/underling /usr/local/bin/underling
# Not root: the worker needs nothing but its database.
USER underling
WORKDIR /var/lib/underling
ENV UNDERLING_LOG=info
ENTRYPOINT ["underling-worker"]
