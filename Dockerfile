# syntax=docker/dockerfile:1
# One image for every role: `hibernator controller`, `hibernator runner` (run
# by the Jobs the controller creates) and `hibernator webhook`.
#
#   docker build -t ghcr.io/hibernator-dev/hibernator:dev .
#
# Stages: `build` (cargo) and `runtime-base` (base image plus everything the
# image declares: labels, user, ports, entrypoint) meet in `runtime`, the last
# stage and so the default target. `prebuilt` is the same runtime-base with a
# binary from the build context instead of the build stage: CI builds it with
# buildah on a base assembled from the host, since it can pull no image
# (scripts/image.sh, docs/installation.md#building-the-image):
#
#   buildah bud --target prebuilt --build-arg BASE=<base> -f Dockerfile <dir holding hibernator>
#
# Keep every image setting in runtime-base, so both images get it.
ARG BASE=gcr.io/distroless/cc-debian12:nonroot

# Build stage: the release binary exactly as `cargo build --release` makes it
# (Cargo.lock honoured with --locked). rustls with aws-lc-rs is the only TLS
# stack, so the binary links nothing but glibc and libgcc_s (the "cc" base).
# PACKAGE and BIN pick another binary built on the SDK, installed as
# /hibernator all the same (docs/writing-executors.md), e.g.
#   docker build --build-arg PACKAGE=hibernator-example-custom-operator \
#     --build-arg BIN=custom-hibernator -t my-hibernator:dev .
FROM rust:1.95-bookworm AS build
ARG PACKAGE=hibernator-operator
ARG BIN=hibernator
WORKDIR /src
# cmake and clang are what aws-lc-sys needs to build its C/assembly sources.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake clang \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p "$PACKAGE" --bin "$BIN" \
    && install -D -m 0755 "target/release/$BIN" /out/hibernator

# Runtime base: distroless glibc base (BASE), no shell, no package manager,
# runs as the `nonroot` user (65532), matching the chart's securityContext.
# Ports: metrics 8080, health 8081, webhook streaming 8082, admission 9443,
# gRPC streaming 50051.
FROM ${BASE} AS runtime-base
LABEL org.opencontainers.image.title="hibernator" \
      org.opencontainers.image.description="Puts non-production cloud infrastructure to sleep during off-hours and wakes it up exactly as it was" \
      org.opencontainers.image.source="https://github.com/hibernator-dev/hibernator" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
EXPOSE 8080 8081 8082 9443 50051
ENTRYPOINT ["/hibernator"]

# CI's image: the binary comes from the build context (scripts/image.sh).
FROM runtime-base AS prebuilt
COPY hibernator /hibernator

# The image users build: the binary from the build stage.
FROM runtime-base AS runtime
COPY --from=build /out/hibernator /hibernator
