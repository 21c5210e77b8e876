// Peer: Fastify 5 + @fastify/session with the connect-redis store. ROLLING=1 is
// @fastify/session's default (the session is saved and the cookie re-sent every request).
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { RedisStore } from 'connect-redis';
import Fastify from 'fastify';
import { createClient } from 'redis';

const client = createClient({ url: process.env.REDIS_URL });
await client.connect();

const app = Fastify({ logger: false });
await app.register(fastifyCookie);
await app.register(fastifySession, {
  secret: 'bench secret, not a real one, long enough for fastify',
  store: new RedisStore({ client, prefix: 'peer-fastify:' }),
  rolling: process.env.ROLLING === '1',
  saveUninitialized: false,
  cookie: { secure: false, maxAge: 30 * 60_000 },
});
app.get('/login', async (request) => {
  request.session.set('user', { id: 42, email: 'ada@example.test', role: 'user' });
  return { ok: true };
});
app.get('/session', async (request, reply) => {
  const user = request.session.get('user');
  if (!user) return reply.code(401).send({ error: 'not signed in' });
  return user;
});
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
