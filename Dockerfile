# syntax=docker/dockerfile:1
# Built and pushed by .github/workflows/release.yml; action.yml runs the
# published image (docker://ghcr.io/expedite-dev/expedite:<version>), so jobs
# pull a small image in seconds instead of compiling Rust on every run.

# Base images are pinned by digest: a tag can be moved, a digest names the same
# bytes forever. The tag beside it is for people; Dependabot (docker ecosystem,
# .github/dependabot.yml) updates tag and digest together, and the CI workflow's
# base-images job checks that each digest resolves.
FROM rust:1.95.0-alpine3.22@sha256:064dfc925d68d1a63f4fd2871bd7dc6e6ea56692989a487185855d62885d90aa AS build
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

FROM alpine:3.22@sha256:14358309a308569c32bdc37e2e0e9694be33a9d99e68afb0f5ff33cc1f695dce
# git: cherry-pick works on real repositories. ca-certificates: TLS to Azure
# and GitHub. Versions are left to the base image's current security fixes
# (see .hadolint.yaml); the base is pinned by digest and the release by its own.
RUN apk add --no-cache git ca-certificates \
    && git config --system --add safe.directory '*'
COPY --from=build /out/expedite /usr/local/bin/expedite
# The post stage runs the same binary under a second name (action.yml's
# post-entrypoint): the runner passes both stages the same arguments.
RUN ln -s /usr/local/bin/expedite /usr/local/bin/expedite-post
# The runner requires the default (root) user for container actions: the
# workspace is mounted from the host and must stay writable.
ENTRYPOINT ["/usr/local/bin/expedite"]
