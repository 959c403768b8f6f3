// Drives Clerk's JavaScript backend SDK (@clerk/backend) against a running
// socialgate, for caddymodule/clerk_js_test.go, which reads what it prints.
//
//   node sdk.mjs api      env SG_API_URL (http://HOST/_auth/api), SG_KEY,
//                         SG_USER_ID (a signed-in user): each call, then
//                         its result or error; users.* (manage) calls work
//                         on a user they create
//   node sdk.mjs webhook  stdin {secret, deliveries: [{headers, body}]}:
//                         each delivery through verifyWebhook
//
// It prints one JSON object: {name: {ok, value} | {ok: false, status,
// code, message}}.
import { createClerkClient } from '@clerk/backend';
import { verifyWebhook } from '@clerk/backend/webhooks';

const results = {};

async function call(name, fn) {
  try {
    results[name] = { ok: true, value: await fn() };
  } catch (e) {
    results[name] = { ok: false, status: e.status, code: e.errors?.[0]?.code, message: e.message };
  }
}

async function api() {
  const clerk = createClerkClient({ secretKey: process.env.SG_KEY, apiUrl: process.env.SG_API_URL });
  const userId = process.env.SG_USER_ID;
  await call('users.getUser', async () => {
    const u = await clerk.users.getUser(userId);
    return {
      id: u.id, firstName: u.firstName, lastName: u.lastName, fullName: u.fullName,
      primaryEmail: u.primaryEmailAddress?.emailAddress, banned: u.banned, locked: u.locked,
      emailLinkedTo: u.emailAddresses[0]?.linkedTo.map((l) => l.type),
      externalAccounts: u.externalAccounts.map((a) => ({ id: a.id, provider: a.provider, identificationId: a.identificationId })),
      phoneNumbers: u.phoneNumbers.length, web3Wallets: u.web3Wallets.length,
    };
  });
  await call('users.getUserOauthAccessToken', async () => {
    const r = await clerk.users.getUserOauthAccessToken(userId, 'custom_corp');
    return { totalCount: r.totalCount, tokens: r.data.map((t) => ({ provider: t.provider, hasToken: !!t.token, externalAccountId: t.externalAccountId })) };
  });
  await call('users.getUserOauthAccessToken (not configured)', () => clerk.users.getUserOauthAccessToken(userId, 'github'));
  await call('users.getUser (unknown)', () => clerk.users.getUser('user_nosuch'));
  let redirectId;
  await call('redirectUrls.createRedirectUrl', async () => {
    const r = await clerk.redirectUrls.createRedirectUrl({ url: 'myapp://js-callback' });
    redirectId = r.id;
    return { id: r.id, url: r.url };
  });
  await call('redirectUrls.getRedirectUrl', async () => (await clerk.redirectUrls.getRedirectUrl(redirectId)).url);
  await call('redirectUrls.getRedirectUrlList', async () => {
    const r = await clerk.redirectUrls.getRedirectUrlList();
    return { totalCount: r.totalCount, urls: r.data.map((u) => u.url) };
  });
  await call('redirectUrls.deleteRedirectUrl', async () => {
    const r = await clerk.redirectUrls.deleteRedirectUrl(redirectId);
    return { id: r.id, deleted: r.deleted, object: r.object };
  });
  let sessionId;
  await call('sessions.getSessionList', async () => {
    const r = await clerk.sessions.getSessionList({ userId });
    sessionId = r.data[0]?.id;
    return { totalCount: r.totalCount, sessions: r.data.map((s) => ({ userId: s.userId, status: s.status, clientId: s.clientId })) };
  });
  await call('sessions.getSession', async () => {
    const s = await clerk.sessions.getSession(sessionId);
    return { sameId: s.id === sessionId, userId: s.userId, status: s.status, expiresAfterUse: s.expireAt > s.lastActiveAt };
  });
  await call('sessions.getSessionList (ended)', async () => (await clerk.sessions.getSessionList({ userId, status: 'ended' })).totalCount);
  await call('sessions.revokeSession', async () => (await clerk.sessions.revokeSession(sessionId)).status);
  await call('sessions.getSession (revoked)', () => clerk.sessions.getSession(sessionId));
  await manageUsers(clerk, userId);
  await call('jwks.getJwks', async () => {
    const { keys } = await clerk.jwks.getJwks();
    return keys.map((k) => ({ alg: k.alg, kty: k.kty, use: k.use, hasKid: !!k.kid }));
  });
}

// manageUsers creates a user and calls every user operation on it.
async function manageUsers(clerk, signedInId) {
  let id;
  const brief = (u) => ({
    firstName: u.firstName, lastName: u.lastName, username: u.username, externalId: u.externalId,
    primaryEmail: u.primaryEmailAddress?.emailAddress, verification: u.primaryEmailAddress?.verification?.status,
    externalAccounts: u.externalAccounts.length, banned: u.banned, locked: u.locked,
    publicMetadata: u.publicMetadata, privateMetadata: u.privateMetadata,
  });
  await call('users.createUser', async () => {
    const u = await clerk.users.createUser({
      emailAddress: ['grace@example.com'], firstName: 'Grace', lastName: 'Hopper', username: 'grace_h', externalId: 'crm-2',
      publicMetadata: { plan: 'pro', prefs: { theme: 'dark', lang: 'en' } }, privateMetadata: { stripe: 'cus_1' },
      skipPasswordRequirement: true,
    });
    id = u.id;
    return brief(u);
  });
  await call('users.createUser (taken)', () => clerk.users.createUser({ emailAddress: ['GRACE@example.com'] }));
  await call('users.createUser (password)', () => clerk.users.createUser({ emailAddress: ['eve@example.com'], password: 'hunter2hunter2' }));
  await call('users.updateUser', async () => brief(await clerk.users.updateUser(id, { firstName: 'Amazing Grace', username: 'grace_b' })));
  await call('users.updateUserMetadata', async () =>
    brief(await clerk.users.updateUserMetadata(id, { publicMetadata: { prefs: { lang: null, font: 'mono' }, seats: 3 } })));
  await call('users.replaceUserMetadata', async () => brief(await clerk.users.replaceUserMetadata(id, { privateMetadata: { crm: 7 } })));
  await call('users.updateUser (metadata)', async () => {
    const u = await clerk.users.updateUser(id, { lastName: 'Hopper-Murray', publicMetadata: { plan: 'free' } });
    return { lastName: u.lastName, publicMetadata: u.publicMetadata, privateMetadata: u.privateMetadata };
  });
  await call('users.getUserList (email)', async () => {
    const r = await clerk.users.getUserList({ emailAddress: ['Grace@Example.com'] });
    return { totalCount: r.totalCount, ids: r.data.map((u) => (u.id === id ? 'created' : u.id)) };
  });
  await call('users.getUserList (oldest first, paged)', async () => {
    const r = await clerk.users.getUserList({ orderBy: '+created_at', limit: 1 });
    return { totalCount: r.totalCount, ids: r.data.map((u) => (u.id === signedInId ? 'signed-in' : u.id)) };
  });
  await call('users.getUserList (filters)', async () => {
    const r = await clerk.users.getUserList({ userId: [id, signedInId], externalId: ['crm-2'], query: 'hopp' });
    return { totalCount: r.totalCount, ids: r.data.map((u) => (u.id === id ? 'created' : u.id)) };
  });
  await call('users.getUserList (phone)', () => clerk.users.getUserList({ phoneNumber: ['+15550100'] }));
  await call('users.getCount', () => clerk.users.getCount({ userId: [id, signedInId, 'user_nobody'] }));
  await call('users.lockUser', async () => brief(await clerk.users.lockUser(id)).locked);
  await call('users.unlockUser', async () => brief(await clerk.users.unlockUser(id)).locked);
  await call('users.banUser', async () => brief(await clerk.users.banUser(id)).banned);
  await call('users.getUserList (banned)', async () => (await clerk.users.getUserList({ banned: true })).data.map((u) => (u.id === id ? 'created' : u.id)));
  await call('users.unbanUser', async () => brief(await clerk.users.unbanUser(id)).banned);
  await call('users.deleteUser', async () => {
    const r = await clerk.users.deleteUser(id);
    return { sameId: r.id === id, deleted: r.deleted, object: r.object };
  });
  await call('users.getUser (deleted)', () => clerk.users.getUser(id));
}

async function webhook() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const { secret, deliveries } = JSON.parse(input);
  for (const [i, d] of deliveries.entries()) {
    await call(`verifyWebhook ${i}`, async () => {
      const req = new Request('http://receiver.test/hooks', { method: 'POST', headers: d.headers, body: d.body });
      const evt = await verifyWebhook(req, { signingSecret: secret });
      return { type: evt.type, object: evt.object, dataObject: evt.data?.object, dataId: evt.data?.id, instanceId: evt.instance_id, timestamp: evt.timestamp };
    });
  }
}

await (process.argv[2] === 'webhook' ? webhook() : api());
console.log(JSON.stringify(results));
