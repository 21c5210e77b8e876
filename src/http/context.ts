/**
 * @module http/context
 * What Warden adds to Fastify's request and instance, declared in one place.
 */
import type {} from '@fastify/cookie';
import type { Authenticated } from '../sessions/session-service.js';
import type { Flash } from '../views/layout.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who this request is signed in as; null when nobody (or when the store could not say). */
    auth: Authenticated | null;
    /** The session store failed while checking the cookie: fail closed. */
    storeDown: boolean;
    csrfSecret: string | undefined;
    /** The audit row of this console change is written (auditChange): the error hook adds none. */
    audited: boolean;
  }
  interface FastifyContextConfig {
    /**
     * The audit action a console change writes (`sessions.revoke`…): its route's own rows, and
     * the failure row the console writes when the store was away (admin/admin-routes).
     */
    auditAction?: string;
    /**
     * Fields of the body schema only a form may send: the bulk form's, which a row's button
     * submits whole. A JSON body naming one is refused (http/strict-json).
     */
    formOnlyFields?: readonly string[];
  }
  interface FastifyReply {
    /** Renders an HTML page with the frame, viewer, CSRF token and pending flash. */
    page(options: {
      title: string;
      body: import('../views/html.js').SafeHtml;
      nav?: import('../views/layout.js').PageOptions['nav'];
      flash?: Flash | null;
    }): FastifyReply;
    csrfToken(): string;
  }
}
