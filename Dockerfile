# Grid's container image: the static grid binary alone, FROM scratch, as servers,
# agents and storage nodes all run it (`make image`, see website/deploy.md).
#
# No builder stage: this machine has no registry to pull a Go image from, so
# `make image` builds the binary on the host (CGO_ENABLED=0, static) and stages it
# with the image's few files in bin/image/, the build context:
#   grid                 the binary, to /bin/grid
#   etc/passwd, etc/group  the grid user (65532), so that tools name it
#   data/                an empty directory: /data, owned by the grid user, so that
#                        a named volume mounted there starts out writable by it
#   tmp/                 mode 1777: Go's os.TempDir, for the rare temporary file
# No `# syntax=` line either: the legacy builder needs no frontend image.
FROM scratch

COPY etc/ /etc/
COPY tmp/ /tmp/
COPY grid /bin/grid
COPY --chown=65532:65532 data/ /data/

# PATH, so that `docker exec CONTAINER grid status` finds the binary. The agent runs
# its storage nodes from its own executable (/proc/self/exe), this same /bin/grid.
ENV PATH=/bin
USER 65532:65532
WORKDIR /data

# HTTP API 7000, gRPC 7001, Raft 7002, gossip 7946 (servers and agents), an agent's
# gRPC 8001, a storage node's gRPC 50051.
EXPOSE 7000 7001 7002 7946 7946/udp 8001 50051

# One probe for every role: `grid healthcheck` reads what to probe from
# GRID_HEALTHCHECK (grpc://127.0.0.1:8001 for an agent, grpc://127.0.0.1:50051 for a
# storage node), and without it asks the server's HTTP API (GRID_ADDR, default
# http://127.0.0.1:7000) for the leader: a server without a quorum is unhealthy.
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 CMD ["/bin/grid", "healthcheck"]

ENTRYPOINT ["/bin/grid"]
CMD ["--help"]
