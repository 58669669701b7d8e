/**
 * The OpenAPI document (`GET /openapi.json`), generated from the routes' zod schemas
 * (fastify-type-provider-zod). OpenAPI 3.1, whose schemas are JSON Schema 2020-12: 3.0 has no
 * word for a map's keys (`propertyNames`), so `logit_bias` and `metadata` would lose theirs.
 */
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';

type Document = { paths?: Record<string, Record<string, { requestBody?: { required?: boolean } }>> };

/**
 * The document's options. Call before the routes are registered: it records which take no body
 * at all (a body schema that accepts none, as `POST /v1/keys`'s), which @fastify/swagger would
 * otherwise document as required.
 */
export function documentOptions(app: FastifyInstance): FastifyDynamicSwaggerOptions {
  const bodyOptional = new Set<string>();
  app.addHook('onRoute', (route) => {
    const body = route.schema?.body as { safeParse?: (v: unknown) => { success: boolean } } | undefined;
    if (!body?.safeParse?.(undefined).success) return;
    const path = route.url.replace(/:(\w+)/g, '{$1}');
    for (const method of [route.method].flat()) bodyOptional.add(`${method.toLowerCase()} ${path}`);
  });
  return {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'GitBlock gateway', version: '0.1.0', description: 'Free OpenAI-compatible inference served by the GitBlock network' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key from POST /v1/keys' } } },
    },
    transform: jsonSchemaTransform,
    transformObject: (documentObject) => {
      const document = ('openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject) as Document;
      for (const [path, operations] of Object.entries(document.paths ?? {})) {
        for (const [method, operation] of Object.entries(operations)) {
          if (operation.requestBody && bodyOptional.has(`${method} ${path}`)) operation.requestBody.required = false;
        }
      }
      return document;
    },
  };
}
