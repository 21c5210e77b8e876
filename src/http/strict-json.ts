/**
 * @module http/strict-json
 * Fastify's Ajv coerces types for every part of a request. A form needs that (every field is
 * a string, one checked box is one value, not a list), but a JSON body says what it means:
 * `{"password": 123}` at step-up was checked as the password "123" and answered 401, and
 * `{"ids": "abc"}` was taken as a list of one id. For each route with a body schema, a JSON
 * body is first checked against the same schema without coercion; a value of the wrong type
 * gets the 400 any validation error gets, naming the field. A console action's body, JSON or
 * form, may carry only the fields its schema names.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { FastifyRequest, RouteOptions } from 'fastify';
import { refuseUnknownNames } from './query-names.js';
import { sentJson } from './respond.js';
import { checkFirst } from './route-checks.js';
import { STEP_UP_FIELD } from './step-up.js';

// Fastify's own options but coercion: defaults and the removal of fields a closed object does
// not name happen as they would in its pass, which runs after this one. Formats and unknown
// keywords are left to that pass. Verbose, as that pass is, for the descriptions problemOf reads.
const ajv = new Ajv({
  verbose: true,
  coerceTypes: false,
  useDefaults: true,
  removeAdditional: true,
  allErrors: false,
  strict: false,
  validateFormats: false,
});

/** Adds the check to a route (from an onRoute hook) that declares a body schema. */
export function checkJsonBodyTypes(route: RouteOptions): void {
  const schema = route.schema?.body;
  if (!schema || typeof schema !== 'object') return;
  let validate: ValidateFunction | undefined;
  // A console action refuses a field it does not take, as its pages refuse such a query
  // parameter (http/query-names): `{"idle_timout": "5m"}` saved nothing and answered 200, and a
  // form's `dry_run=1` sent to the cleanup removed every expired session. A form may also carry
  // the step-up's password (http/step-up), which any action that asks for it reads.
  const properties = (schema as { properties?: Record<string, unknown> }).properties;
  const known =
    route.url.startsWith('/admin/') && properties ? new Set(Object.keys(properties)) : null;
  const formOnly = new Set(route.config?.formOnlyFields ?? []);
  const knownJson = known && new Set([...known].filter((name) => !formOnly.has(name)));

  const check = async (request: FastifyRequest) => {
    // An empty JSON body reaches validation as undefined, as it would from a form.
    if (request.body === undefined || !sentJson(request)) return;
    if (knownJson) refuseUnknownNames(request.body, knownJson, 'body');
    validate ??= ajv.compile(schema);
    if (validate(request.body)) return;
    throw Object.assign(new Error('body does not match its schema'), {
      statusCode: 400,
      validation: validate.errors ?? [],
      validationContext: 'body',
    });
  };
  if (!known) {
    checkFirst(route, check);
    return;
  }
  // A form's names too; like the rest, after the CSRF check, which csrfFirst puts ahead of
  // every check of a route, so that a forged request is refused and audited as forged.
  const formChecked = async (request: FastifyRequest) => {
    if (sentJson(request) || typeof request.body !== 'object' || !request.body) return;
    const { [STEP_UP_FIELD]: _password, ...fields } = request.body as Record<string, unknown>;
    refuseUnknownNames(fields, known, 'body');
  };
  checkFirst(route, check, formChecked);
}
