// Peer: Express 5 + express-session + connect-redis, as its README sets it up.
// ROLLING=1 re-sends the cookie and touches the Redis TTL on every request.
import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
import { createClient } from 'redis';

const client = createClient({ url: process.env.REDIS_URL });
await client.connect();

const app = express();
app.use(
  session({
    store: new RedisStore({ client, prefix: 'peer-express:' }),
    secret: 'bench secret, not a real one, long enough',
    resave: false,
    saveUninitialized: false,
    rolling: process.env.ROLLING === '1',
    cookie: { maxAge: 30 * 60_000 },
  }),
);
app.get('/login', (req, res) => {
  req.session.user = { id: 42, email: 'ada@example.test', role: 'user' };
  res.json({ ok: true });
});
app.get('/session', (req, res) => {
  if (!req.session.user) return res.status(401).json({ error: 'not signed in' });
  res.json(req.session.user);
});
app.listen(Number(process.env.PORT), '127.0.0.1');
