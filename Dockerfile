# One image for every Aurora program, on the same Node major as development (see README, "Runtime").
# Node 24 runs the TypeScript sources directly, so there is no build stage. Multi-arch: the node base
# image has arm64 for the Apple machines and amd64 for the cloud nodes.
#   operator:       docker run IMAGE cmd/operator.ts [flags]   (the default)
#   triage server:  docker run IMAGE workloads/triage-server/main.ts
#   node profiler:  docker run IMAGE workloads/node-profiler/main.ts
FROM node:24-bookworm-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Production dependencies only; install scripts stay off (onnxruntime's would fetch CUDA libraries).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# As operator/node-flags.ts explains: two malloc arenas are plenty for a Node process.
ENV MALLOC_ARENA_MAX=2
COPY --from=dependencies /app/node_modules ./node_modules
COPY . .
USER node
EXPOSE 8080
ENTRYPOINT ["node"]
# The operator's V8 flags, as in operator/node-flags.ts: small semi-spaces keep a large cache cheap.
CMD ["--max-semi-space-size=1", "--optimize-for-size", "cmd/operator.ts"]
