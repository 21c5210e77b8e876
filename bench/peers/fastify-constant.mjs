// Peer: the ceiling of the HTTP stack itself. Fastify 5, a constant answer, no Redis.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/login', async () => ({ ok: true }));
app.get('/session', async () => ({ id: 42, email: 'ada@example.test', role: 'user' }));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
