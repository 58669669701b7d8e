/**
 * A method a known path does not answer is a 405 with `Allow` listing the ones it does (RFC 9110
 * §15.5.6), in OpenAI's error shape, where Fastify alone would answer 404 as for a path that does
 * not exist: a client that POSTs to `GET /v1/models` learns what it got wrong, not that the
 * resource is gone. Done with routes of Fastify's own router, so that a static path (POST
 * `/v1/nodes/register`) keeps other methods from falling through to a parametric one
 * (GET `/v1/nodes/{nodeId}`), as it does for the method it declares.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { answeredCodes, ApiError } from './errors.ts';

/**
 * Starts recording the routes registered on `app` from now on; the function it returns, called
 * once every route is registered, answers every other method of each recorded path with 405.
 */
export function answerUndeclaredMethods(app: FastifyInstance): () => void {
  const methodsOf = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    const methods = methodsOf.get(route.url) ?? new Set<string>();
    for (const method of [route.method].flat()) methods.add(method.toUpperCase());
    // Fastify answers HEAD for every GET route (exposeHeadRoutes).
    if (methods.has('GET')) methods.add('HEAD');
    methodsOf.set(route.url, methods);
  });
  return () => {
    // Copied first: the routes added below are recorded too.
    const paths = [...methodsOf].map(([url, methods]) => [url, [...methods].sort()] as const);
    for (const [url, methods] of paths) {
      const others = app.supportedMethods.filter((m) => !methods.includes(m));
      if (!others.length) continue;
      const allow = methods.join(', ');
      // Answered before the body is read: a body meant for another method is not parsed, nor limited.
      const refuse = async (request: FastifyRequest, reply: FastifyReply) => {
        const error = new ApiError('method_not_allowed', `${request.method} is not allowed on ${request.url.split('?')[0]}; it allows ${allow}`);
        answeredCodes.set(request, error.code);
        return reply.status(error.status).header('allow', allow).send(error.body());
      };
      app.route({ method: others, url, schema: { hide: true }, onRequest: refuse, handler: refuse });
    }
  };
}
