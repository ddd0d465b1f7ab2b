# syntax=docker/dockerfile:1
# One image for every role: `hibernator controller`, `hibernator runner` (run
# by the Jobs the controller creates) and `hibernator webhook`.
#
#   docker build -t ghcr.io/hibernator-dev/hibernator:dev .
#
# Build stage: the release binary exactly as `cargo build --release` makes it
# (Cargo.lock honoured with --locked). rustls with aws-lc-rs is the only TLS
# stack, so the binary links nothing but glibc.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# cmake and clang are what aws-lc-sys needs to build its C/assembly sources.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake clang \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p hibernator-operator --bin hibernator \
    && install -D -m 0755 target/release/hibernator /out/hibernator

# Runtime stage: distroless glibc base, no shell, no package manager, runs as
# the `nonroot` user (65532), matching the chart's securityContext.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="hibernator" \
      org.opencontainers.image.description="Puts non-production cloud infrastructure to sleep during off-hours and wakes it up exactly as it was" \
      org.opencontainers.image.source="https://github.com/hibernator-dev/hibernator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/hibernator /hibernator
USER 65532:65532
EXPOSE 8080 8081 8082 9443 50051
ENTRYPOINT ["/hibernator"]
