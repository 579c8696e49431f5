/** Pieces shared by the OpenAPI document's modules: the close-code table, response shapes, the task id parameter, route registration. */
import type { OpenAPIRegistry, ResponseConfig, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { errorTable } from '../errors.js';
import { CLOSE_CODE_MEANINGS, CloseCode } from '../wire/close-codes.js';
import { errorBodySchema, taskIdSchema } from './api-schemas.js';

/** The close-code table: code, name, meaning and the error codes that close with it. */
export function closeCodeTable(): { code: number; name: string; meaning: string; errors: string[] }[] {
  return (Object.keys(CloseCode) as (keyof typeof CloseCode)[]).map((name) => ({
    code: CloseCode[name],
    name,
    meaning: CLOSE_CODE_MEANINGS[name],
    errors: Object.entries(errorTable)
      .filter(([, row]) => row.close === CloseCode[name])
      .map(([code]) => code),
  }));
}

/** The `{id}` path parameter of the task routes. */
export const idParams = z.object({ id: taskIdSchema });

/** What every WebSocket route answers when it refuses the upgrade for these reasons (JSON error bodies). */
export const upgradeRefusals: Record<number, ResponseConfig> = {
  400: { description: '`batch` is not one of 1, true, 0, false (INVALID_QUERY, JSON error body).' },
  403: { description: 'Origin not allowed (FORBIDDEN_ORIGIN, JSON error body).' },
  426: {
    description: 'A GET without `Upgrade: websocket` (UPGRADE_REQUIRED, JSON error body).',
    headers: {
      Upgrade: { description: 'The protocol to switch to.', schema: { type: 'string', enum: ['websocket'] } },
      Connection: { description: 'Names `Upgrade`.', schema: { type: 'string', enum: ['Upgrade'] } },
    },
  },
  503: { description: 'The gateway is shutting down, or WS_MAX_PER_IP / WS_MAX_TOTAL is reached (TOO_MANY_CONNECTIONS).' },
};

export const json = (schema: z.ZodType, description: string): ResponseConfig => ({
  description,
  content: { 'application/json': { schema } },
});

/** Error answers, each with the error body and the codes that produce that status. */
export function errors(...statuses: number[]): Record<string, ResponseConfig> {
  const out: Record<string, ResponseConfig> = {};
  for (const status of statuses) {
    const codes = Object.entries(errorTable).filter(([, row]) => row.status === status).map(([code]) => code);
    out[String(status)] = json(errorBodySchema, `Error (code ${codes.join(', ')}).`);
  }
  return out;
}

const requestIdHeader = { 'X-Request-Id': { description: 'The request id (echoed, or created).', schema: { type: 'string' as const } } };

/** Registers a route; `viaKoa` routes pass the request-id middleware and answer X-Request-Id. */
export function register(api: OpenAPIRegistry, route: RouteConfig, viaKoa = true): void {
  if (!viaKoa) return api.registerPath(route);
  const responses: RouteConfig['responses'] = {};
  for (const [status, response] of Object.entries(route.responses)) {
    responses[status] = '$ref' in response ? response : { ...response, headers: { ...requestIdHeader, ...response.headers } };
  }
  api.registerPath({ ...route, responses });
}

