// Peer: the floor for a Redis-backed session check. Fastify 5 reads the cookie, does one
// Redis GET and answers; no signature, no expiry logic, no user lookup.
import { randomBytes } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import Fastify from 'fastify';
import { createClient } from 'redis';

const client = createClient({ url: process.env.REDIS_URL });
await client.connect();

const app = Fastify({ logger: false });
await app.register(fastifyCookie);
app.get('/login', async (_request, reply) => {
  const sid = randomBytes(32).toString('base64url');
  const user = { id: 42, email: 'ada@example.test', role: 'user' };
  await client.set(`peer-get:${sid}`, JSON.stringify(user), { PX: 30 * 60_000 });
  reply.setCookie('sid', sid, { path: '/', httpOnly: true });
  return { ok: true };
});
app.get('/session', async (request, reply) => {
  const sid = request.cookies.sid;
  const raw = sid ? await client.get(`peer-get:${sid}`) : null;
  if (!raw) return reply.code(401).send({ error: 'not signed in' });
  return JSON.parse(raw);
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
