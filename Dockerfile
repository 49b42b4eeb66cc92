# syntax=docker/dockerfile:1
# hubgate: a static binary on a distroless base, running as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/hubgate ./cmd/hubgate \
 && mkdir -p /out/data /out/certs

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/hubgate /usr/local/bin/hubgate
# An empty data directory owned by the runtime user, so a fresh volume is writable.
COPY --from=build --chown=65532:65532 /out/data /var/lib/hubgate
COPY --from=build --chown=65532:65532 /out/certs /certs
# The data directory (registry file, dev certificates, connection strings).
WORKDIR /var/lib/hubgate
VOLUME ["/var/lib/hubgate"]
# MQTT/TLS, AMQP/TLS, HTTPS (REST + WebSockets), metrics/health. Docker lets
# a non-root process bind 443 in the container's network namespace
# (net.ipv4.ip_unprivileged_port_start=0); on Kubernetes see deploy/k8s.
EXPOSE 8883 5671 443 9090
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/hubgate"]
CMD ["serve", "--data-dir", "/var/lib/hubgate", "--metrics-addr", ":9090"]
