/**
 * @module http/flash
 * One-shot messages carried across a redirect in a signed cookie, so a toast cannot be
 * forged through a crafted link.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import './context.js';
import type { Flash } from '../views/layout.js';
import { FLASH_COOKIE } from './cookies.js';

const KINDS = new Set(['success', 'warning', 'danger', 'info']);

// A cookie holds about 4 KB; ids beyond this many are not carried (the toast says how many failed).
const MAX_KEEP = 40;

export function setFlash(reply: FastifyReply, flash: Flash): void {
  const value = flash.keep ? { ...flash, keep: flash.keep.slice(0, MAX_KEEP) } : flash;
  reply.setCookie(FLASH_COOKIE, JSON.stringify(value), {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    signed: true,
    maxAge: 60,
  });
}

/** Reads and clears the flash, if a valid one came with the request. */
export function takeFlash(request: FastifyRequest, reply: FastifyReply): Flash | null {
  const raw = request.cookies[FLASH_COOKIE];
  if (!raw) return null;
  reply.clearCookie(FLASH_COOKIE, { path: '/' });

  const unsigned = request.unsignCookie(raw);
  if (!unsigned.valid || unsigned.value === null) return null;
  try {
    const parsed = JSON.parse(unsigned.value) as Flash;
    if (!KINDS.has(parsed.kind) || typeof parsed.message !== 'string') return null;
    const keep = Array.isArray(parsed.keep) ? parsed.keep.filter((k) => typeof k === 'string') : [];
    return { kind: parsed.kind, message: parsed.message, keep };
  } catch {
    return null;
  }
}
