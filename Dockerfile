# xactly image: `docker build -t xactly:local .` (docker compose builds it too).
# One image for every role; the command picks it: worker (default), board,
# fake-x, enqueue, posts, ... See docs/operations.md.

# --- build: dev dependencies, TypeScript, then drop the dev dependencies ---
FROM node:20-slim AS build
WORKDIR /app
# Manifests first, so the dependency layer is reused while only code changes.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# --- runtime: production dependencies and compiled code only ---
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
# package.json carries "type": "module", which makes Node load dist/**/*.js as ESM.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# The files stay root-owned and read-only to the process; it needs no writes.
USER node
# Docker stops a container with SIGTERM; the worker then drains in-flight X
# calls for up to 2 × X_TIMEOUT_MS + 5 s, so give it a longer grace period
# (compose: stop_grace_period; docker stop -t).
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["worker"]
