# The manager image the Helm chart runs: one static binary, distroless,
# non-root (uid 65532, as the chart's securityContext expects).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /out/kubist ./cmd/kubist

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kubist /kubist
USER 65532:65532
ENTRYPOINT ["/kubist"]
