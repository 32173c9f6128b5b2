# syntax=docker/dockerfile:1.7
# Multi-stage image of the gateway: router + shards (+ stores, shared). Node 24 runs the TypeScript sources
# directly (type stripping), so there is no compile step. Workspace packages must stay OUTSIDE node_modules
# (Node refuses to strip types under node_modules), which is why this image installs the router's dependency
# closure in place with `pnpm install --filter @wagw/router...` rather than `pnpm deploy` (deploy copies the
# workspace packages into node_modules).
ARG NODE_VERSION=24.9.0

# Every workspace manifest (package.json of the root, packages/*, test, bench) and nothing else: pnpm's frozen
# install needs each importer of the lockfile present, and collecting them here means a new workspace package
# (packages/console, ...) needs no edit of this file. The install layer below stays cached until one changes.
FROM node:${NODE_VERSION}-bookworm-slim AS manifests
WORKDIR /src
COPY . .
RUN find . -type f ! -name package.json -delete && find . -mindepth 1 -type d -empty -delete

FROM node:${NODE_VERSION}-bookworm-slim AS deps
ENV PNPM_HOME=/pnpm PATH=/pnpm:$PATH CI=true
RUN npm install -g pnpm@12.4.2
WORKDIR /app
COPY pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
# Baileys is patched at install (pnpm-workspace.yaml patchedDependencies).
COPY patches patches
COPY --from=manifests /src/ ./
RUN pnpm install --prod --frozen-lockfile --filter "@wagw/router..."

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data \
    NODE_OPTIONS=--disable-warning=ExperimentalWarning
WORKDIR /app
COPY --from=deps --chown=node:node /app /app
# All workspace packages' sources (tests excluded by .dockerignore): the router's closure (shared, stores with
# its migrations, shard, router) and whatever it comes to depend on, without a list to keep up to date here.
COPY --chown=node:node packages packages
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The router forwards SIGTERM to its shards, drains and exits 0; give it the shutdown timeout plus margin.
STOPSIGNAL SIGTERM
CMD ["node", "packages/router/src/main.ts"]
