# syntax=docker/dockerfile:1
# The operator image for users with Docker. It has the same filesystem layout as the image
# `scripts/image` builds with buildah (the one the tests run): both lay it out with
# `scripts/image rootfs` (the release binary, exactly the shared libraries ldd lists for it, the CA
# bundle, /etc/passwd and /etc/group naming uid 65532) on an empty base, and both set the same user,
# entrypoint, command, port and labels. tests/image.rs checks this file against the built image;
# this file itself is not built here (its base image comes from a registry CI cannot reach).
#
#   docker build -t ghcr.io/identity-operator/identity-operator:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
#   docker run --rm ghcr.io/identity-operator/identity-operator:0.1.0 --help

# Debian 12 (bookworm): the glibc the binary links against is the one copied into the image.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The workspace's other crates: the operator builds from model, api and client; the emulator's and
# the bench's manifests must be there for Cargo to load the workspace, they are not compiled.
COPY crates ./crates
COPY scripts/image ./scripts/image
# Only what the binary needs: tests, charts and the other scripts stay out of the cache key.
RUN cargo build --release --locked -p identity-operator --bin identity-operator \
 && scripts/image rootfs /rootfs target/release/identity-operator

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
COPY --from=builder /rootfs /
USER 65532:65532
WORKDIR /
EXPOSE 8080/tcp
LABEL org.opencontainers.image.title=identity-operator \
      org.opencontainers.image.description="Kubernetes operator that keeps identity-provider connections (JIT) and application login flows (MFA) of Asgardeo / WSO2 Identity Server in Git" \
      org.opencontainers.image.licenses=Apache-2.0 \
      org.opencontainers.image.source=https://github.com/identity-operator/identity-operator \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.revision=$REVISION
ENTRYPOINT ["/identity-operator"]
CMD ["run"]
