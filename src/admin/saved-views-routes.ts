/**
 * @module admin/saved-views-routes
 * `GET /admin/saved-views?page=…` lists the viewer's views (JSON); `POST /admin/saved-views`
 * saves the current filters of a page under a name; `POST /admin/saved-views/{id}/delete`
 * deletes one of the viewer's own. Saving and deleting are audited.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { SavedViewRow } from '../db/schema.js';
import { problemText, WardenError } from '../errors.js';
import { auditChange, requireCsrf } from '../http/auth.js';
import { setFlash } from '../http/flash.js';
import { done, wantsJson } from '../http/respond.js';
import { safeNext } from '../http/sign-in.js';
import { SAVED_VIEW_PAGES, SavedViews, viewName, viewQuery } from './saved-views.js';

const PageParam = Type.Union(SAVED_VIEW_PAGES.map((p) => Type.Literal(p)));

function publicView(v: SavedViewRow) {
  return {
    id: v.id,
    page: v.page,
    name: v.name,
    query: v.query,
    url: `/admin/${v.page}${v.query ? `?${v.query}` : ''}`,
    createdAt: v.created_at,
  };
}

export const savedViewRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { audit, csrf, clock, database } = app.warden;
  const views = new SavedViews(database.db);
  const csrfChecked = requireCsrf({ audit, csrf });

  app.get(
    '/saved-views',
    { schema: { querystring: Type.Object({ page: PageParam }) } },
    async (request) => {
      const list = await views.list(request.auth!.user.id, request.query.page);
      return { items: list.map(publicView) };
    },
  );

  app.post(
    '/saved-views',
    {
      config: { auditAction: 'saved_views.create' },
      schema: {
        body: Type.Object({
          _csrf: Type.Optional(Type.String({ maxLength: 512 })),
          page: PageParam,
          // Longer than allowed on purpose: viewName answers with the field and the limit.
          name: Type.String({ maxLength: 1_000 }),
          query: Type.Optional(Type.String({ maxLength: 4_096 })),
        }),
      },
      preHandler: csrfChecked,
    },
    async (request, reply) => {
      const { page } = request.body;
      let query = '';
      let name = '';
      let view: SavedViewRow;
      try {
        query = viewQuery(page, request.body.query ?? '', app.filterSchemas.get(page));
        name = viewName(request.body.name);
        // A name taken, or one view too many, is refused here too.
        view = await views.create({
          ownerId: request.auth!.user.id,
          page,
          name,
          query,
          now: clock(),
        });
      } catch (err) {
        if (!(err instanceof WardenError) || wantsJson(request)) throw err;
        // A form goes back to the page it was sent from, with its filters when they are good,
        // saying why: an error page of its own would leave the filters behind.
        setFlash(reply, {
          kind: 'danger',
          message: `The view was not saved: ${problemText(err)}.`,
        });
        return reply.redirect(`/admin/${page}${query ? `?${query}` : ''}`, 303);
      }
      await auditChange(audit, request, {
        target: `view:${view.id}`,
        outcome: 'success',
        details: { page, name, query },
      });
      return done(request, reply, {
        status: 201,
        json: { view: publicView(view) },
        redirectTo: publicView(view).url,
        flash: { kind: 'success', message: `Saved view "${name}".` },
      });
    },
  );

  app.post(
    '/saved-views/:viewId/delete',
    {
      config: { auditAction: 'saved_views.delete' },
      schema: {
        params: Type.Object({ viewId: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) }),
        body: Type.Optional(
          Type.Object({
            _csrf: Type.Optional(Type.String({ maxLength: 512 })),
            return_to: Type.Optional(Type.String({ maxLength: 2_048 })),
          }),
        ),
      },
      preHandler: csrfChecked,
    },
    async (request, reply) => {
      const { viewId } = request.params;
      // Only the owner's own views: someone else's answers exactly like one that never was.
      const view = await views.delete(request.auth!.user.id, viewId);
      await auditChange(audit, request, {
        target: `view:${viewId}`,
        outcome: view ? 'success' : 'failure',
        details: view ? { page: view.page, name: view.name } : { reason: 'no such view of yours' },
      });
      if (!view)
        throw new WardenError('WARDEN_NOT_FOUND', [`saved view ${viewId}`], { id: viewId });

      const back = safeNext(request.body?.return_to);
      return done(request, reply, {
        json: { deleted: publicView(view) },
        redirectTo: back.startsWith('/admin/') ? back : `/admin/${view.page}`,
        flash: { kind: 'success', message: `Deleted view "${view.name}".` },
      });
    },
  );
};
