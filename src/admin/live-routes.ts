/**
 * @module admin/live-routes
 * The console's live feed: `GET /admin/live`, the figures the header shows on load, and
 * `GET /admin/events`, the Server-Sent Events stream that keeps them (and the sessions
 * table) current. Both sit behind the /admin scope's superuser guard.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { StoreUnavailableError } from '../resilience/guarded-store.js';
import { LiveHub } from './live-stream.js';

const LiveFigures = Type.Object({
  /** Active sessions now; null when the store could not say. */
  active: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  storeUp: Type.Boolean(),
});

export const liveRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, live, users, clock } = app.warden;
  const hub = new LiveHub({ bus: live, store, users: users.repo, clock, log: app.log });
  // Before the server stops listening: open streams would otherwise hold close() forever.
  app.addHook('preClose', async () => hub.closeAll());

  app.get(
    '/live',
    {
      schema: {
        summary: 'Active sessions and whether the session store answers, for the header',
        response: { 200: LiveFigures },
      },
    },
    async () => {
      try {
        const { active } = await store.counts(clock());
        return { active, storeUp: true };
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err;
        return { active: null, storeUp: false };
      }
    },
  );

  app.get(
    '/events',
    {
      schema: {
        summary: 'Server-Sent Events: session changes, active count, store state',
        produces: ['text/event-stream'],
      },
    },
    async (request, reply) => {
      const auth = request.auth!;
      const out = hub.open({ sessionId: auth.session.id, userId: auth.user.id });
      // A browser that goes away closes the response; the stream goes with it.
      reply.raw.once('close', () => out.destroy());
      return reply
        .header('content-type', 'text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache, no-transform')
        .header('x-accel-buffering', 'no')
        .send(out);
    },
  );
};
