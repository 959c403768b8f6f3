# socialgate: Caddy with its standard modules and the socialgate module, run
# as a non-root user, its state on a volume. Mount a directory holding your
# Caddyfile (deploy/Caddyfile is a starting point) at /etc/socialgate:
#
#   docker build -t socialgate .
#   docker run -d --name socialgate --restart unless-stopped \
#       -p 80:80 -p 443:443 -p 443:443/udp \
#       -v socialgate-data:/var/lib/socialgate \
#       -v "$PWD/config:/etc/socialgate:ro" \
#       --env-file socialgate.env socialgate
#
# docs/production.md explains the volume, backups, reloads and upgrades.

FROM golang:1.26-trixie AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/socialgate ./cmd/socialgate

FROM debian:trixie-slim
# ca-certificates: the providers are reached over HTTPS; curl: the health check.
RUN apt-get update \
	&& apt-get install -y --no-install-recommends ca-certificates curl \
	&& rm -rf /var/lib/apt/lists/* \
	&& groupadd --gid 10001 socialgate \
	&& useradd --uid 10001 --gid socialgate --no-create-home \
		--home-dir /var/lib/socialgate --shell /usr/sbin/nologin socialgate \
	&& install -d -o socialgate -g socialgate -m 0700 /var/lib/socialgate /run/socialgate
COPY --from=build /out/socialgate /usr/bin/socialgate

# Everything the gateway writes lives on the volume: the store
# (/var/lib/socialgate/store with deploy/Caddyfile) and Caddy's data
# directory (/var/lib/socialgate/caddy: certificates, ACME account).
ENV XDG_DATA_HOME=/var/lib/socialgate \
	XDG_CONFIG_HOME=/var/lib/socialgate \
	SOCIALGATE_HEALTH_URL=http://127.0.0.1:2020/_auth/health
VOLUME /var/lib/socialgate
USER 10001:10001
EXPOSE 80 443 443/udp

# The Caddyfile's loopback health site (see deploy/Caddyfile): 200 while the
# store works. Point SOCIALGATE_HEALTH_URL elsewhere if yours differs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
	CMD curl -fsS -o /dev/null "$SOCIALGATE_HEALTH_URL" || exit 1

ENTRYPOINT ["socialgate"]
CMD ["run", "--config", "/etc/socialgate/Caddyfile"]
