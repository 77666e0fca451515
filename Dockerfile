# pgwait as a container image: a static binary in an otherwise empty (scratch) image.
#
#   docker build -t pgwait .                      # builds pgwait from source (musl, static)
#   docker buildx build --platform linux/amd64,linux/arm64 -t you/pgwait --push .
#
# Use it as an init container, or copy the binary into your own image:
#   COPY --from=pgwait /pgwait /usr/local/bin/pgwait
#
# The stages are ordered so that the legacy builder (no BuildKit) can build the `prebuilt`
# target — the same runtime stage with a binary built on the host — without touching the Rust
# builder image; the test suite does exactly that, since it cannot pull images.

# The runtime image: everything but the binary. Both final stages below start from it.
FROM scratch AS runtime
LABEL org.opencontainers.image.title="pgwait" \
      org.opencontainers.image.description="Wait until PostgreSQL really accepts work, then exec your program" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
USER 65532:65532
ENTRYPOINT ["/pgwait"]

# A binary built on the host with the documented static build (see README); used by the tests:
#   docker build --target prebuilt -t pgwait .
FROM runtime AS prebuilt
COPY target/x86_64-unknown-linux-gnu/release/pgwait /pgwait

# Build from source: musl is static by default; getrandom uses the syscall, so no /dev is needed.
FROM rust:1.95-alpine AS builder
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
RUN RUSTFLAGS='--cfg getrandom_backend="linux_getrandom"' cargo build --release --locked \
 && cp target/release/pgwait /pgwait

# The default image.
FROM runtime AS image
COPY --from=builder /pgwait /pgwait
