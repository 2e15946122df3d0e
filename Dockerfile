# syntax=docker/dockerfile:1
#
# cached: a Nix binary cache server, as a container image.
#
#   docker buildx build -t REGISTRY/cached:TAG --push .
#   docker run -p 8080:8080 -v cached-data:/var/lib/cached REGISTRY/cached:TAG
#
# The base images are pinned by tag, not by digest: this file was written
# on a machine that could not resolve digests. To pin them, look the
# digests up (docker buildx imagetools inspect IMAGE) and write
# IMAGE@sha256:… in both FROM lines.
#
# deploy/*_test.go runs this file's `go build` command on the same source
# (filtered by .dockerignore) and checks the image settings below against
# the Kubernetes manifests in deploy/kubernetes.

# Build: cgo for SQLite, linked fully static so that the runtime image
# needs no libc. netgo and osusergo keep the resolver and user lookups in
# Go; sqlite_omit_load_extension removes SQLite's dlopen.
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=1
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -tags netgo,osusergo,sqlite_omit_load_extension -ldflags '-s -w -linkmode external -extldflags -static' -o /out/cached ./cmd/cached
# The data directory, to be owned by the runtime user, so that a fresh
# named volume mounted there is writable. It is copied as an entry of its
# parent, so that --chown applies to it.
RUN mkdir -p /out/var/lib/cached

# Runtime: distroless static (CA certificates for S3 over TLS, tzdata, an
# /etc/passwd with the nonroot user 65532), no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="cached" \
      org.opencontainers.image.description="A Nix binary cache server: verifies every upload, signs narinfos, stores NARs on disk or S3" \
      org.opencontainers.image.source="https://github.com/nix-cached/cached" \
      org.opencontainers.image.documentation="https://github.com/nix-cached/cached/blob/main/deploy/README.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/cached /cached
COPY --from=build --chown=65532:65532 /out/var/lib/ /var/lib/
USER 65532:65532
ENV CACHED_LISTEN=:8080 CACHED_DATA_DIR=/var/lib/cached
VOLUME /var/lib/cached
EXPOSE 8080
ENTRYPOINT ["/cached"]
CMD ["serve"]
