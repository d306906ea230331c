# One image for every role: the entrypoint is gvp, the argument is the role.
#   docker build -t gvp .
#   docker run --network host --cap-add SYS_NICE gvp mcp --config /etc/gvp/mcp.yaml
#   docker run --network host gvp local
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/opengvp/gvp/internal/buildinfo.Version=${VERSION}" \
      -o /out/gvp . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gvp /usr/bin/gvp
COPY --from=build --chown=nonroot:nonroot /out/data /var/lib/gvp
COPY configs/examples /etc/gvp/examples
# SIP (rm 5060, mcp 5070), admin ports, configsrv, rs, embedded broker; RTP 20000-45000/udp.
EXPOSE 5060/udp 5060/tcp 5070/udp 5070/tcp 8300 8301 8302 8888 8080 61613
VOLUME ["/var/lib/gvp"]
ENTRYPOINT ["/usr/bin/gvp"]
CMD ["local", "--set", "data_dir=/var/lib/gvp"]
