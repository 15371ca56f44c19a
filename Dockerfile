# syntax=docker/dockerfile:1
# kube-field-exporter: a release build of the same crate and lockfile CI tests, in a
# minimal non-root image holding only the binary (and, from the base, CA certificates
# and glibc).

# --- build -------------------------------------------------------------------------
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so they are cached across source changes.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && echo '' > src/lib.rs \
 && cargo build --release --locked --bin kube-field-exporter \
 && rm -rf src
COPY src ./src
# Make sure the real sources are newer than the cached stub build.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin kube-field-exporter \
 && ./target/release/kube-field-exporter --help >/dev/null

# --- runtime -----------------------------------------------------------------------
# distroless/cc: glibc, libgcc, CA certificates, /etc/passwd with `nonroot` (65532);
# no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/kube-field-exporter /usr/local/bin/kube-field-exporter
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kube-field-exporter"]
CMD ["serve", "--resource", "deployments.apps"]
