# syntax=docker/dockerfile:1.7
# Multi-stage image of the gateway: router + shards (+ stores, shared). Node 24 runs the TypeScript sources
# directly (type stripping), so there is no compile step. Workspace packages must stay OUTSIDE node_modules
# (Node refuses to strip types under node_modules), which is why this image installs the router's dependency
# closure in place with `pnpm install --filter @wagw/router...` rather than `pnpm deploy` (deploy copies the
# workspace packages into node_modules).
ARG NODE_VERSION=24.9.0

FROM node:${NODE_VERSION}-bookworm-slim AS deps
ENV PNPM_HOME=/pnpm PATH=/pnpm:$PATH CI=true
RUN npm install -g pnpm@12.4.2
WORKDIR /app
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
COPY patches patches
COPY packages/shared/package.json packages/shared/
COPY packages/stores/package.json packages/stores/
COPY packages/shard/package.json packages/shard/
COPY packages/router/package.json packages/router/
COPY packages/console/package.json packages/console/
COPY packages/wa-sim/package.json packages/wa-sim/
COPY test/package.json test/
COPY bench/package.json bench/
RUN pnpm install --prod --frozen-lockfile --filter "@wagw/router..."

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data \
    NODE_OPTIONS=--disable-warning=ExperimentalWarning
WORKDIR /app
COPY --from=deps --chown=node:node /app /app
COPY --chown=node:node packages/shared/src packages/shared/src
COPY --chown=node:node packages/stores/src packages/stores/src
COPY --chown=node:node packages/stores/migrations packages/stores/migrations
COPY --chown=node:node packages/shard/src packages/shard/src
COPY --chown=node:node packages/router/src packages/router/src
# The web console's sources: the router bundles them with esbuild at the first /console request.
COPY --chown=node:node packages/console/src packages/console/src
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The router forwards SIGTERM to its shards, drains and exits 0; give it the shutdown timeout plus margin.
STOPSIGNAL SIGTERM
CMD ["node", "packages/router/src/main.ts"]
