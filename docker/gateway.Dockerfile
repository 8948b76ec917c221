# linktoken-gateway. Build from the repository root:
#   docker build -f docker/gateway.Dockerfile -t linktoken-gateway .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p linktoken-gateway

FROM debian:12-slim
COPY --from=build /src/target/release/linktoken-gateway /usr/local/bin/linktoken-gateway
USER nobody
ENV LINKTOKEN_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENTRYPOINT ["/usr/local/bin/linktoken-gateway"]
