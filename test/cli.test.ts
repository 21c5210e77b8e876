/**
 * The `warden` command line, run as a user runs it: `node bin/warden.js …` in a child
 * process, on a SQLite file in a temp dir of its own. Every child is killed after its test.
 */
import net from 'node:net';
import SQLite from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { useCli } from './support/cli.js';

const PASSWORD = 'correct horse battery';
const SESSION_ID_RE = /^[0-9a-f]{64}$/;

const cli = useCli('warden-cli-');
const { start, run: warden, query, count } = cli;

async function seed(users = 30, sessions = 120): Promise<void> {
  const res = await warden(['seed-demo', '--users', String(users), '--sessions', String(sessions)]);
  expect(res.code, res.stderr).toBe(0);
}

describe('warden (usage and config)', () => {
  it('should exit 1 with one line naming the variable when a setting is bad', async () => {
    const res = await warden(['serve'], { PORT: 'eighty' });

    expect(res.code).toBe(1);
    expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/^warden: PORT: /);
    expect(res.stdout).toBe('');
  });

  it('should exit 1 with one line naming PORT, HOST or DATABASE_URL when the server cannot start', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = taken.address() as net.AddressInfo;
      const inUse = await warden(['serve'], { HOST: '127.0.0.1', PORT: String(port) });
      const badHost = await warden(['serve'], { HOST: '999.1.1.1', PORT: '0' });
      for (const [res, variable] of [
        [inUse, 'PORT'],
        [badHost, 'HOST'],
      ] as const) {
        expect(res.code, res.stderr).toBe(1);
        // The server's own JSON lines go to standard error too; the last line is the answer.
        const last = res.stderr.trimEnd().split('\n').at(-1)!;
        expect(last).toMatch(new RegExp(`^warden serve: ${variable}: `));
        expect(res.stderr).not.toMatch(/\n\s+at /);
      }
      expect(inUse.stderr).toContain(`127.0.0.1:${port} is already in use`);
      // Before listening, an empty database's server says how to make the first superuser, and
      // against which database: the command run with another would make one nobody sees.
      expect(inUse.stderr).toContain(
        "Create the first superuser, with this\nserver's DATABASE_URL (and REDIS_URL) set",
      );

      // A database that cannot be reached (nothing listens on port 1) is DATABASE_URL's problem.
      const noDatabase = await warden(['serve'], {
        HOST: '127.0.0.1',
        PORT: '0',
        DATABASE_URL: 'postgres://warden@127.0.0.1:1/warden',
      });
      expect(noDatabase.code, noDatabase.stderr).toBe(1);
      expect(noDatabase.stderr.trimEnd().split('\n').at(-1)).toMatch(
        /^warden serve: DATABASE_URL: cannot open the database: .*ECONNREFUSED/,
      );
      expect(noDatabase.stderr).not.toMatch(/\n\s+at /);
    } finally {
      taken.close();
    }
  });

  it('should exit 2 with one line for an unknown command or flag', async () => {
    const unknownCommand = await warden(['frobnicate']);
    const unknownFlag = await warden(['sessions', 'list', '--colour']);

    for (const res of [unknownCommand, unknownFlag]) {
      expect(res.code).toBe(2);
      expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
    expect(unknownCommand.stderr).toContain("unknown command 'frobnicate'");
    expect(unknownFlag.stderr).toContain("'--colour'");
  });

  // Nine processes, each loading the CLI: on a slow 2-core machine in a full run they took
  // more than 30 s one after another.
  it('should print help for every command without needing a valid config', async () => {
    const commands = [
      ['--help'],
      ['serve', '--help'],
      ['migrate', '--help'],
      ['create-superuser', '--help'],
      ['seed-demo', '--help'],
      ['sessions', '--help'],
      ['sessions', 'list', '--help'],
      ['sessions', 'revoke', '--help'],
      ['sessions', 'cleanup', '--help'],
    ];
    for (let i = 0; i < commands.length; i += 3) {
      const batch = commands.slice(i, i + 3);
      const answers = await Promise.all(batch.map((args) => warden(args, { PORT: 'not-a-port' })));
      for (const [j, res] of answers.entries()) {
        expect(res.code, batch[j].join(' ')).toBe(0);
        expect(res.stdout).toMatch(/^Usage: warden/);
      }
    }
  });
});

describe('warden migrate', () => {
  it('should apply the schema once and then say it is up to date', async () => {
    const first = await warden(['migrate']);
    const second = await warden(['migrate']);

    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('applied 0001_initial');
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('up to date');
    expect(count("select count(*) as n from sqlite_master where name = 'sessions'")).toBe(1);
  });
});

describe('warden create-superuser', () => {
  it("should warn when the history's newest sign-in has no session here and no end (sessions in Redis)", async () => {
    await seed(5, 20);
    // A server on Redis signed someone in: the history has the sign-in, this database no
    // session, and nothing ended it.
    const db = new SQLite(cli.dbFile);
    const [user] = db
      .prepare("select id, email from users where status = 'approved' limit 1")
      .all() as {
      id: number;
      email: string;
    }[];
    db.prepare(
      `insert into session_events (session_id, user_id, kind, reason, actor_id, at, ip, user_agent)
       values (?, ?, 'signed_in', null, null, ?, null, null)`,
    ).run('ab'.repeat(32), user!.id, Date.now());
    db.close();

    const res = await warden(['create-superuser', '--email', user!.email], {
      WARDEN_PASSWORD: PASSWORD,
    });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain(
      "if Warden's servers keep sessions in Redis, run this command with their REDIS_URL",
    );
    const listed = await warden(['sessions', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stderr).toContain('REDIS_URL');
    // Standard output stays the answer alone.
    expect(() => JSON.parse(listed.stdout)).not.toThrow();
  });

  it('should create an approved superuser from WARDEN_PASSWORD', async () => {
    const res = await warden(['create-superuser', '--email', 'Root@Example.test'], {
      WARDEN_PASSWORD: PASSWORD,
    });

    expect(res.code, res.stderr).toBe(0);
    const users = query<{ role: string; status: string; approved_at: number | null }>(
      "select role, status, approved_at from users where email_normalized = 'root@example.test'",
    );
    expect(users).toEqual([
      { role: 'superuser', status: 'approved', approved_at: expect.any(Number) },
    ]);
    const audit = query<{ actor_email: string }>(
      "select actor_email from audit_log where action = 'users.create_superuser'",
    );
    expect(audit).toEqual([{ actor_email: 'cli' }]);
  });

  it('should promote an existing user, set the password and end their sessions', async () => {
    await seed(20, 80);
    const [owner] = query<{ id: number; email: string; hash: string }>(
      `select u.id, u.email, u.password_hash as hash from users u
       where u.role = 'user' and exists (select 1 from sessions s where s.user_id = u.id
         and s.expires_at > ?) limit 1`,
      Date.now(),
    );
    const active = count(
      'select count(*) as n from sessions where user_id = ? and expires_at > ?',
      owner.id,
      Date.now(),
    );

    const res = await warden(['create-superuser', '--email', owner.email], {
      WARDEN_PASSWORD: PASSWORD,
    });

    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`ended ${active} session`);
    // Its sessions are in this database: no word of another store.
    expect(res.stderr).not.toContain('REDIS_URL');
    const [after] = query<{ role: string; status: string; hash: string }>(
      'select role, status, password_hash as hash from users where id = ?',
      owner.id,
    );
    expect(after.role).toBe('superuser');
    expect(after.status).toBe('approved');
    expect(after.hash).not.toBe(owner.hash);
    expect(count('select count(*) as n from sessions where user_id = ?', owner.id)).toBe(0);
  });

  it('should refuse a new look-alike address, yet promote an account made before that rule', async () => {
    const lookAlike = '\u0441\u0435\u043e@example.test';
    const refused = await warden(['create-superuser', '--email', lookAlike], {
      WARDEN_PASSWORD: PASSWORD,
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('reads as "ceo" in Latin letters');
    // An older account with such an address (made by hand here): the way back in still works.
    await seed(2, 4);
    const db = new SQLite(cli.dbFile);
    db.prepare(
      'update users set email = ?, email_normalized = ? where id = (select min(id) from users)',
    ).run(lookAlike, lookAlike);
    db.close();
    const promoted = await warden(['create-superuser', '--email', lookAlike], {
      WARDEN_PASSWORD: PASSWORD,
    });
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(query<{ role: string }>('select role from users where email = ?', lookAlike)).toEqual([
      { role: 'superuser' },
    ]);
  });

  it('should refuse without a terminal when WARDEN_PASSWORD is not set', async () => {
    const res = await warden(['create-superuser', '--email', 'root@example.test']);

    expect(res.code).toBe(2);
    expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(res.stderr).toContain('WARDEN_PASSWORD');
  });

  it('should refuse a password shorter than 10 characters', async () => {
    const res = await warden(['create-superuser', '--email', 'root@example.test'], {
      WARDEN_PASSWORD: 'short',
    });

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('at least 10 characters');
  });
});

describe('warden sessions', () => {
  it('should list active sessions as JSON that parses', async () => {
    await seed();
    const res = await warden(['sessions', 'list', '--json', '--limit', '1000']);

    expect(res.code, res.stderr).toBe(0);
    const body = JSON.parse(res.stdout) as {
      total: number;
      items: { id: string; status: string; email: string | null }[];
    };
    const activeInDb = count('select count(*) as n from sessions where expires_at > ?', Date.now());
    expect(body.total).toBe(activeInDb);
    expect(body.items).toHaveLength(activeInDb);
    for (const item of body.items) {
      expect(item.id).toMatch(SESSION_ID_RE);
      expect(item.status).toBe('active');
      expect(item.email).toMatch(/@example\.test$/);
    }
  });

  it('should filter the list by part of the email and by status', async () => {
    await seed();
    const [{ email }] = query<{ email: string }>(
      'select u.email from users u join sessions s on s.user_id = u.id limit 1',
    );
    const part = email.split('@')[0].toUpperCase();

    const res = await warden(['sessions', 'list', '--json', '--status', 'all', '--email', part]);

    expect(res.code, res.stderr).toBe(0);
    const body = JSON.parse(res.stdout) as { total: number; items: { email: string }[] };
    // The seed is random: another address may contain the same part, and then it matches too.
    expect(body.total).toBe(
      count(
        'select count(*) as n from sessions s join users u on u.id = s.user_id where instr(lower(u.email), ?) > 0',
        part.toLowerCase(),
      ),
    );
    expect(body.items.map((i) => i.email)).toContain(email);
    for (const item of body.items) expect(item.email.toLowerCase()).toContain(part.toLowerCase());
  });

  it('should revoke by id and report exact counts', async () => {
    await seed();
    const now = Date.now();
    const live = query<{ id: string }>(
      'select id from sessions where expires_at > ? order by id limit 2',
      now,
    ).map((r) => r.id);
    const [expired] = query<{ id: string }>(
      'select id from sessions where expires_at <= ? limit 1',
      now,
    );
    const unknown = 'f'.repeat(64);

    const res = await warden(['sessions', 'revoke', ...live, expired.id, unknown, '--json']);
    const again = await warden(['sessions', 'revoke', live[0]]);

    expect(res.code, res.stderr).toBe(0);
    const body = JSON.parse(res.stdout) as { counts: Record<string, number> };
    expect(body.counts).toEqual({
      revoked: 2,
      already_ended: 1,
      not_found: 1,
      invalid: 0,
      kept_own: 0,
      failed: 0,
    });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^0 revoked, 1 already ended\n/);
    expect(
      count('select count(*) as n from sessions where id in (?, ?, ?)', ...live, expired.id),
    ).toBe(0);
    const [audit] = query<{ actor_email: string; details: string }>(
      "select actor_email, details from audit_log where action = 'sessions.bulk_revoke'",
    );
    expect(audit.actor_email).toBe('cli');
    expect(JSON.parse(audit.details).revoked.sort()).toEqual([...live].sort());
  });

  it('should exit 1 and name ids that are not session ids', async () => {
    await warden(['migrate']);
    const res = await warden(['sessions', 'revoke', 'not-an-id']);

    expect(res.code).toBe(1);
    expect(res.stdout).toBe('0 revoked, 1 not a session id\n  not-an-id  not a session id\n');
    // Nothing was revoked: the audit row says it failed, as the exit code does.
    const [audit] = query<{ outcome: string }>(
      "select outcome from audit_log where action = 'sessions.revoke'",
    );
    expect(audit?.outcome).toBe('failure');
  });

  it('should revoke every session of one user by email and report exact counts', async () => {
    await seed();
    const now = Date.now();
    const [owner] = query<{ id: number; email: string }>(
      `select u.id, u.email from users u join sessions s on s.user_id = u.id
       group by u.id order by count(*) desc limit 1`,
    );
    const live = count(
      'select count(*) as n from sessions where user_id = ? and expires_at > ?',
      owner.id,
      now,
    );
    const ended = count(
      'select count(*) as n from sessions where user_id = ? and expires_at <= ?',
      owner.id,
      now,
    );
    const others = count('select count(*) as n from sessions where user_id != ?', owner.id);

    const res = await warden([
      'sessions',
      'revoke',
      '--user-email',
      owner.email.toUpperCase(),
      '--json',
    ]);

    expect(res.code, res.stderr).toBe(0);
    const body = JSON.parse(res.stdout) as { counts: Record<string, number> };
    expect(body.counts.revoked).toBe(live);
    expect(body.counts.already_ended).toBe(ended);
    expect(count('select count(*) as n from sessions where user_id = ?', owner.id)).toBe(0);
    expect(count('select count(*) as n from sessions')).toBe(others);
    expect(
      count(
        "select count(*) as n from audit_log where action = 'sessions.revoke_user' and target = ?",
        `user:${owner.id}`,
      ),
    ).toBe(1);
  });

  it('should answer a user revocation in text with its counts, not a line per ended session', async () => {
    await seed();
    const now = Date.now();
    const [owner] = query<{ id: number; email: string; ended: number }>(
      `select u.id, u.email, count(*) as ended from users u join sessions s on s.user_id = u.id
       where s.expires_at <= ? group by u.id order by count(*) desc limit 1`,
      now,
    );
    expect(owner!.ended).toBeGreaterThan(1);

    const res = await warden(['sessions', 'revoke', '--user-email', owner!.email]);

    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^\\d+ revoked, ${owner!.ended} already ended\\n$`));
  });

  it('should fail with one line when no user has the email', async () => {
    await warden(['migrate']);
    const res = await warden(['sessions', 'revoke', '--user-email', 'nobody@example.test']);

    expect(res.code).toBe(1);
    expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(res.stderr).toContain('nobody@example.test');
  });

  it('should remove expired sessions on cleanup and keep the live ones', async () => {
    await seed();
    const now = Date.now();
    const expired = count('select count(*) as n from sessions where expires_at <= ?', now);
    const live = count('select count(*) as n from sessions where expires_at > ?', now);
    expect(expired).toBeGreaterThan(0);

    const res = await warden(['sessions', 'cleanup']);

    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(`removed ${expired} expired session${expired === 1 ? '' : 's'}\n`);
    expect(count('select count(*) as n from sessions where expires_at <= ?', now)).toBe(0);
    expect(count('select count(*) as n from sessions')).toBe(live);
    expect(count("select count(*) as n from session_events where kind = 'cleaned_up'")).toBe(
      expired,
    );
    expect(
      count("select count(*) as n from audit_log where action = 'sessions.cleanup_expired'"),
    ).toBe(1);
  });

  it('should remove entries no listing can read on cleanup, as the console does', async () => {
    await seed();
    const db = new SQLite(cli.dbFile);
    const { user_id: owner } = db.prepare('select user_id from sessions limit 1').get() as {
      user_id: number;
    };
    // A time that is text: the listing skips it, and only a cleanup removes it.
    db.prepare(
      `insert into sessions (id, user_id, created_at, last_seen_at, idle_expires_at,
        absolute_expires_at, expires_at, ip, user_agent)
       values (?, ?, 'yesterday', 0, ?, ?, ?, '::1', 'x')`,
    ).run(
      'e'.repeat(64),
      owner,
      Date.now() + 3_600_000,
      Date.now() + 3_600_000,
      Date.now() + 3_600_000,
    );
    db.close();

    const res = await warden(['sessions', 'cleanup', '--json']);

    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ unreadable: 1 });
    expect(count('select count(*) as n from sessions where id = ?', 'e'.repeat(64))).toBe(0);
  });
});

describe('warden audit verify', () => {
  it('should report an intact chain, then name the row that was changed', async () => {
    await seed(3, 3);
    await warden(['sessions', 'cleanup']);
    const intact = await warden(['audit', 'verify', '--json']);

    const db = new SQLite(cli.dbFile);
    db.prepare("update audit_log set details = '{}' where action = 'demo.seed'").run();
    const [changed] = db.prepare("select id from audit_log where action = 'demo.seed'").all() as {
      id: number;
    }[];
    db.close();
    const broken = await warden(['audit', 'verify']);

    expect(intact.code, intact.stderr).toBe(0);
    expect(JSON.parse(intact.stdout)).toMatchObject({ intact: true, count: 2 });
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`audit log broken at row ${changed.id} `);
  });
});

describe('warden serve', () => {
  it('should answer GET /login and exit 0 on SIGTERM', async () => {
    const child = start(['serve'], { PORT: '0', HOST: '127.0.0.1' });
    let stdout = '';
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no listening line; stderr: ${stderr}`)),
        20_000,
      );
      child.stdout?.on('data', (d) => {
        stdout += d;
        const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.on('exit', () => reject(new Error(`exited early; stderr: ${stderr}`)));
    });

    const res = await fetch(`${url}/login`);
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(stderr).toContain('npx warden create-superuser --email you@example.com');

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toContain('"event":"stopped"');
  });
});
