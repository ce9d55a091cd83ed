# The manager image the Helm chart runs: one static binary, distroless,
# non-root (uid 65532, as the chart's securityContext expects). The binary
# is the manager alone (tag manager_only): `kubist dev`, the local mesh and
# the offline tools are left out of it, and out of its memory.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -tags manager_only -trimpath -ldflags '-s -w' -o /out/kubist ./cmd/kubist

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kubist /kubist
USER 65532:65532
ENTRYPOINT ["/kubist"]
