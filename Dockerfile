# syntax=docker/dockerfile:1
# The operator image: built with the locked dependencies, run on distroless
# as the non-root user 65532. The binary links only glibc and libgcc (rustls, no OpenSSL), which the
# distroless cc image has; it has no shell and no package manager.
#
#   docker build -t identity-operator:dev .
#   docker run --rm identity-operator:dev --help

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Only what the binary needs: tests, charts and scripts stay out of the build context's cache key.
RUN cargo build --release --locked --bin identity-operator \
 && cp target/release/identity-operator /identity-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /identity-operator /identity-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/identity-operator"]
CMD ["run"]
