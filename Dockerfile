# syntax=docker/dockerfile:1
# Build stage: compiles TypeScript to dist/ with the dev toolchain.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
# scripts/build-web.ts bundles the page (src/web, src/client) into dist/public/app.js.
COPY scripts ./scripts
RUN npm run build

# Runtime stage: production dependencies only, non-root.
FROM node:24-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8000
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/web ./web
# The `taskcast` CLI launcher; without src/ and tsx it runs dist/bin/taskcast.js.
COPY bin ./bin
USER node
EXPOSE 8000
# Exec form: node itself is PID 1, so SIGTERM from `docker stop` reaches it directly.
CMD ["node", "dist/bin/start.js"]
