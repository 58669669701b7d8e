/**
 * The gateway's dependencies (MongoDB, NATS, Temporal) being away is not the gateway's bug: the
 * client gets a 503 `upstream_unavailable` with `Retry-After`, within a few seconds, instead of
 * a 500 or a request hanging on a driver's own timeouts (a paused server holds a socket open
 * without answering, and the drivers wait far longer than a client will).
 */
import { unavailable, unreachable, type Upstream } from './errors.ts';

/** How long one call to a dependency may take before the client is told to come back. */
export const upstreamDeadlineMs = 4_000;

/**
 * Runs one call to a dependency with a deadline: an error that says the dependency is away, or
 * no answer within `ms`, becomes the 503 for `what`. API errors and anything else pass through.
 * The call itself is not cancelled by the deadline; callers whose call has an effect (a quota
 * reservation) make that effect reconcilable (see reservations.ts).
 *
 * @example
 * const key = await upstream('MongoDB', () => authenticate(deps, request));
 */
export async function upstream<T>(what: Upstream, call: () => Promise<T>, ms = upstreamDeadlineMs): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable(what)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([call(), late]);
  } catch (err) {
    const away = unreachable(err);
    if (away) throw Object.assign(unavailable(away), { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
