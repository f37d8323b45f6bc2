# fleetca in a container: a static binary on a distroless base, running as
# a non-root user, its data on a volume. Build: docker build -t fleetca .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/fleetca ./cmd/fleetca
# The data directory, made here so that a new volume mounted on it starts
# out owned by the image's user (Docker copies the image's ownership into
# an empty volume); a root-owned one would stop the start.
RUN mkdir -m 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fleetca /fleetca
COPY --from=build --chown=65532:65532 /out/data /data
# The data directory holds the database, the CA and its keys: mount a volume
# there, and set FLEETCA_CA_KEY_PASSPHRASE (from a secret) to seal the keys.
VOLUME /data
ENV FLEETCA_DATA_DIR=/data \
    FLEETCA_API_ADDR=0.0.0.0:7400 \
    FLEETCA_MQTT_ADDR=0.0.0.0:8883
EXPOSE 7400 8883
USER nonroot:nonroot
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD ["/fleetca", "healthcheck"]
ENTRYPOINT ["/fleetca"]
CMD ["serve"]
