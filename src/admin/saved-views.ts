/**
 * @module admin/saved-views
 * A superuser's named filters of the sessions or users table: the rows of `saved_views`, the
 * check that a saved query is one the page itself would accept, and the menu each page shows.
 *
 * "The page's filter schema" is the querystring schema its GET route declares, captured as the
 * route is registered ({@link captureFilterSchemas}), so a view is checked against exactly
 * what the page validates, even after someone adds a filter to it.
 */
import type { TSchema } from '@sinclair/typebox';
import { Ajv, type ValidateFunction } from 'ajv';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Kysely } from 'kysely';
import type { DB, SavedViewRow } from '../db/schema.js';
import { WardenError } from '../errors.js';
import { INTEGER_PROBLEM, nonDigitField } from '../http/plain-integers.js';
import { problemOf } from '../http/respond.js';
import { badTextField } from '../http/text-check.js';
import { hasDirectionControl, type SafeHtml } from '../views/html.js';
import { dayRange } from './dates.js';
import { savedViewsMenu } from './saved-views-view.js';
import { readFilters, toStoreQuery } from './session-filters.js';

export const SAVED_VIEW_PAGES = ['sessions', 'users'] as const;
export type SavedViewPage = (typeof SAVED_VIEW_PAGES)[number];

export const MAX_VIEW_NAME = 80;
export const MAX_VIEWS_PER_PAGE = 50;
const MAX_QUERY_LENGTH = 2_048;

/** Query fields that place a view in a listing (a page, a snapshot), not filters: never saved. */
const POSITION_FIELDS = new Set(['page', 'as_of']);

const PAGE_PATHS: Record<string, SavedViewPage> = {
  '/admin/sessions': 'sessions',
  '/admin/users': 'users',
};

declare module 'fastify' {
  interface FastifyInstance {
    /** The querystring schema of each page a view can be saved for, as its route declared it. */
    filterSchemas: Map<SavedViewPage, TSchema>;
  }
}

/**
 * Registered in the console's scope before the pages: records the querystring schema of each
 * page's GET route as Fastify registers it (fastify-plugin, so the hook sees the siblings).
 */
export const captureFilterSchemas: FastifyPluginAsync = fp(async (app) => {
  const schemas = new Map<SavedViewPage, TSchema>();
  app.decorate('filterSchemas', schemas);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const page = PAGE_PATHS[route.url];
    const schema = route.schema?.querystring as TSchema | undefined;
    if (page && schema && methods.includes('GET')) schemas.set(page, schema);
  });
});

// Fastify's options for a querystring, so that a saved query is checked, and told what is
// wrong with it, in the words its page would use.
const ajv = new Ajv({
  coerceTypes: 'array',
  useDefaults: true,
  removeAdditional: true,
  allErrors: false,
  strict: false,
  validateFormats: false,
});
const validators = new WeakMap<TSchema, ValidateFunction>();

function invalid(field: string, problem: string): WardenError {
  return new WardenError('WARDEN_VALIDATION', [`${field} ${problem}`], { field });
}

/** A name to save: trimmed, 1 to 80 characters, no control characters. */
const INVISIBLE_IN_NAMES =
  /(?!\u200c|\u200d|[\u{e0020}-\u{e007f}])[\p{Cf}\p{Co}\u115f\u1160\u3164\uffa0\u2800]/u;

export function viewName(raw: string): string {
  const name = raw.trim().normalize('NFC');
  if (name.length === 0) throw invalid('name', 'is required');
  if ([...name].length > MAX_VIEW_NAME) {
    throw invalid('name', `must be at most ${MAX_VIEW_NAME} characters`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (/[\u0000-\u001f\u007f]/.test(name))
    throw invalid('name', 'must not contain control characters');
  if (hasDirectionControl(name)) {
    throw invalid('name', 'must not contain direction controls (they reverse the text after them)');
  }
  // Two views whose names differ only by a zero-width space or a soft hyphen would read alike.
  // The zero-width joiner and non-joiner stay (emoji sequences and Persian need them), and so do
  // tag characters (the flags of Scotland, England and Wales are made of them).
  if (INVISIBLE_IN_NAMES.test(name)) {
    throw invalid('name', 'must not contain invisible characters (such as a zero-width space)');
  }
  return name;
}

/** Each page's rules past its schema (real dates, in order), as its route applies them. */
const PAGE_RULES: Record<SavedViewPage, (fields: Record<string, unknown>) => void> = {
  sessions: (f) => toStoreQuery(readFilters(f as Parameters<typeof readFilters>[0]), Date.now()),
  users: (f) => dayRange(['from', String(f.from ?? '')], ['to', String(f.to ?? '')]),
};

/**
 * The query string to save, checked against the page's own schema (and its page's rules past it,
 * PAGE_RULES); throws a 400 naming `query.<field>`. Page and snapshot fields are dropped.
 */
export function viewQuery(page: SavedViewPage, raw: string, schema: TSchema | undefined): string {
  if (!schema) throw new WardenError('WARDEN_INTERNAL');
  const text = raw.trim().replace(/^\?/, '');
  if (text.length > MAX_QUERY_LENGTH) {
    throw invalid('query', `must be at most ${MAX_QUERY_LENGTH} characters`);
  }

  const kept = new URLSearchParams();
  const fields: Record<string, string> = {};
  const known = (schema as { properties?: Record<string, unknown> }).properties ?? {};
  for (const [key, value] of new URLSearchParams(text)) {
    if (POSITION_FIELDS.has(key)) continue;
    if (!Object.hasOwn(known, key))
      throw invalid(`query.${key}`, `is not a filter of the ${page} page`);
    if (Object.hasOwn(fields, key)) throw invalid(`query.${key}`, 'must be given once');
    fields[key] = value;
    kept.append(key, value);
  }

  const bad = badTextField(fields);
  if (bad !== undefined) throw invalid(`query.${bad.field}`, bad.problem);
  const notDigits = nonDigitField(schema, fields);
  if (notDigits !== undefined) throw invalid(`query.${notDigits}`, INTEGER_PROBLEM);
  let validate = validators.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  // Converts the fields in place, as the page's own check would.
  const converted: Record<string, unknown> = fields;
  if (!validate(converted)) {
    const problems = validate.errors ?? [];
    const field = (problems[0]?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    throw invalid(`query.${field}`, problemOf(problems));
  }
  try {
    PAGE_RULES[page](converted);
  } catch (err) {
    if (!(err instanceof WardenError) || err.code !== 'WARDEN_VALIDATION') throw err;
    const field = String(err.details?.field ?? '');
    throw new WardenError('WARDEN_VALIDATION', [`query.${err.params[0]}`], {
      field: `query.${field}`,
    });
  }
  return kept.toString();
}

export class SavedViews {
  readonly #db: Kysely<DB>;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  /** A person's views of one page, by name. */
  list(ownerId: number, page: SavedViewPage): Promise<SavedViewRow[]> {
    return this.#db
      .selectFrom('saved_views')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .where('page', '=', page)
      .orderBy('name')
      .orderBy('id')
      .limit(MAX_VIEWS_PER_PAGE)
      .execute();
  }

  /** Saves a view; a second view of the same name on the same page is refused (400, `name`). */
  async create(v: {
    ownerId: number;
    page: SavedViewPage;
    name: string;
    query: string;
    now: number;
  }): Promise<SavedViewRow> {
    const count = await this.#db
      .selectFrom('saved_views')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('owner_id', '=', v.ownerId)
      .where('page', '=', v.page)
      .executeTakeFirstOrThrow();
    if (Number(count.n) >= MAX_VIEWS_PER_PAGE) {
      throw invalid(
        'name',
        `cannot be saved: you have ${MAX_VIEWS_PER_PAGE} views of this page; delete one first`,
      );
    }
    try {
      return await this.#db
        .insertInto('saved_views')
        .values({
          owner_id: v.ownerId,
          page: v.page,
          name: v.name,
          query: v.query,
          created_at: v.now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    } catch (err) {
      const e = err as { code?: string };
      if (e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw invalid(
          'name',
          `"${v.name}" is taken: you already have a ${v.page} view of that name`,
        );
      }
      throw err;
    }
  }

  /** Deletes one of the owner's views; undefined when there is no such view of theirs. */
  delete(ownerId: number, id: number): Promise<SavedViewRow | undefined> {
    return this.#db
      .deleteFrom('saved_views')
      .where('id', '=', id)
      .where('owner_id', '=', ownerId)
      .returningAll()
      .executeTakeFirst();
  }
}

/**
 * The saved-views menu for a page, for the viewer: their views as links, each with a delete
 * button, and a form that saves the current filters (`search`, with or without `?`).
 */
export async function savedViewsMenuFor(
  request: FastifyRequest,
  reply: FastifyReply,
  page: SavedViewPage,
  search: string,
): Promise<SafeHtml> {
  const owner = request.auth!.user.id;
  const views = await new SavedViews(request.server.warden.database.db).list(owner, page);
  const query = search.replace(/^\?/, '');
  return savedViewsMenu({ page, views, query, csrfToken: reply.csrfToken() });
}
