/**
 * @module admin/admin-routes
 * The console: one scope, one superuser guard for every route in it.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { requireSuperuser } from '../http/auth.js';
import { notFound } from '../http/respond.js';
import { analyticsRoutes } from './analytics-routes.js';
import { auditRoutes } from './audit-routes.js';
import { endedRoutes } from './ended-routes.js';
import { exportRoutes } from './export-routes.js';
import { liveRoutes } from './live-routes.js';
import { policyRoutes } from './policy-routes.js';
import { captureFilterSchemas } from './saved-views.js';
import { savedViewRoutes } from './saved-views-routes.js';
import { sessionRoutes } from './session-routes.js';
import { statsRoutes } from './stats-routes.js';
import { userRoutes } from './user-routes.js';

export const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // onRequest runs before body parsing and validation, so nobody but a superuser
  // learns anything about a console route, not even which input it wants.
  app.addHook('onRequest', requireSuperuser({ audit: app.warden.audit }));

  // A not-found handler of this scope runs the guard first, so an unknown console path
  // answers nobody but a superuser differently from a known one.
  app.setNotFoundHandler(notFound);

  app.get('/', async (_request, reply) => reply.redirect('/admin/sessions', 303));
  // Before the pages: saved views check a query against the schema each page declares.
  await app.register(captureFilterSchemas);
  await app.register(sessionRoutes);
  await app.register(statsRoutes);
  await app.register(userRoutes);
  await app.register(analyticsRoutes);
  await app.register(endedRoutes);
  await app.register(liveRoutes);
  await app.register(policyRoutes);
  await app.register(auditRoutes);
  await app.register(exportRoutes);
  await app.register(savedViewRoutes);
};
