// Drives Clerk's JavaScript backend SDK (@clerk/backend) against a running
// socialgate, for caddymodule/clerk_js_test.go, which reads what it prints.
//
//   node sdk.mjs api      env SG_API_URL (http://HOST/_auth/api), SG_KEY,
//                         SG_USER_ID: each call, then its result or error
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
  await call('sessions.revokeSession', async () => (await clerk.sessions.revokeSession(sessionId)).status);
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
