# syntax=docker/dockerfile:1
# Built and pushed by .github/workflows/release.yml; action.yml runs the
# published image (docker://ghcr.io/expedite-dev/expedite:<version>), so jobs
# pull a small image in seconds instead of compiling Rust on every run.

FROM rust:1.95-alpine3.22 AS build
# musl-dev: the C runtime to link a static binary against.
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The sandbox is a workspace member (its manifest must be present) but is
# not compiled: the action never runs `sandbox` or `drill`.
COPY sandbox ./sandbox
RUN cargo build --release --locked --no-default-features --bin expedite \
    && install -D -m 0755 target/release/expedite /out/expedite

FROM alpine:3.22
# git: cherry-pick works on real repositories. ca-certificates: TLS to Azure
# and GitHub. Versions are left to the base image's current security fixes
# (see .hadolint.yaml); the image is pinned by its published tag instead.
RUN apk add --no-cache git ca-certificates \
    && git config --system --add safe.directory '*'
COPY --from=build /out/expedite /usr/local/bin/expedite
# The post stage runs the same binary under a second name (action.yml's
# post-entrypoint): the runner passes both stages the same arguments.
RUN ln -s /usr/local/bin/expedite /usr/local/bin/expedite-post
# The runner requires the default (root) user for container actions: the
# workspace is mounted from the host and must stay writable.
ENTRYPOINT ["/usr/local/bin/expedite"]
