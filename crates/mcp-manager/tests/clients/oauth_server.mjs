// A real OAuth 2 authorization server for the gateway's resource-server
// tests: oauth2-mock-server (npm) on 127.0.0.1, with an RS256 key, its
// discovery document, JWKS and token endpoints.
//
//   node oauth_server.mjs AUDIENCE
//
// It prints one JSON line: the issuer's URL and tokens it signed, each
// made wrong in one way (or not), and tokens signed by another key; then
// it serves until its standard input closes. `POST /introspect-opaque`
// answers RFC 7662 introspection for a few opaque tokens (active, without
// the scope, the audience or a subject, inactive) to the client `gateway`
// with the secret `s3cret`;
// `GET /garbage-jwks` answers something that is not a key set. A client
// signing in gets tokens for AUDIENCE with the scope it asked for.
//
// MCP_PEER_NODE_MODULES must name the node_modules folder that holds
// oauth2-mock-server (and jose, which it brings).

import path from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.MCP_PEER_NODE_MODULES;
if (!modules) {
  console.error("MCP_PEER_NODE_MODULES is not set");
  process.exit(2);
}
const load = (name) => import(pathToFileURL(path.join(modules, name)).href);
const { OAuth2Server } = await load("oauth2-mock-server/dist/index.mjs");
const jose = await load("jose/dist/webapi/index.js");

const audience = process.argv[2];
const server = new OAuth2Server();
const key = await server.issuer.keys.generate("RS256");
await server.start(0, "127.0.0.1");
const issuer = server.issuer.url;

// Every token this server signs for the gateway unless told otherwise.
const build = (change, expiresIn) =>
  server.issuer.buildToken({
    expiresIn,
    scopesOrTransform: (header, payload) => {
      Object.assign(payload, { sub: "alice", aud: audience, scope: "mcp:tools openid" });
      change?.(header, payload);
    },
  });

const now = Math.floor(Date.now() / 1000);
const tokens = {
  valid: await build(),
  bob: await build((_, p) => Object.assign(p, { sub: "bob" })),
  noScope: await build((_, p) => Object.assign(p, { scope: "openid" })),
  expired: await build(undefined, -600),
  notYetValid: await build((_, p) => Object.assign(p, { nbf: now + 600 })),
  otherAudience: await build((_, p) => Object.assign(p, { aud: "https://other.example.com/mcp" })),
  audienceList: await build((_, p) => Object.assign(p, { aud: ["https://other.example.com/mcp", audience] })),
  otherIssuer: await build((_, p) => Object.assign(p, { iss: "http://127.0.0.1:1" })),
  noExpiry: await build((_, p) => delete p.exp),
};

// Signed by a key the issuer never published: once under the issuer's own
// kid, once under a kid of its own.
const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
const foreign = (kid) =>
  new jose.SignJWT({ sub: "mallory", aud: audience, scope: "mcp:tools" })
    .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
    .setIssuer(issuer)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(privateKey);
tokens.foreignKeySameKid = await foreign(key.kid);
tokens.foreignKeyUnknownKid = await foreign("no-such-key");
// A shared-secret algorithm, which the gateway does not accept.
tokens.hs256 = await new jose.SignJWT({ sub: "mallory", aud: audience, scope: "mcp:tools" })
  .setProtectedHeader({ alg: "HS256", kid: key.kid })
  .setIssuer(issuer)
  .setExpirationTime("1h")
  .sign(new TextEncoder().encode("a-secret-anyone-could-guess-00000"));

const opaque = {
  "opaque-active": {
    active: true, sub: "carol", scope: "mcp:tools", client_id: "cli",
    aud: audience, iss: issuer, exp: now + 3600,
  },
  "opaque-no-scope": { active: true, sub: "carol", scope: "openid", aud: audience, exp: now + 3600 },
  "opaque-no-audience": { active: true, sub: "carol", scope: "mcp:tools", exp: now + 3600 },
  "opaque-no-subject": { active: true, scope: "mcp:tools", aud: audience, exp: now + 3600 },
  "opaque-inactive": { active: false },
};
let introspections = 0;
server.service.addRoute("POST", "/introspect-opaque", (req, res) => {
  introspections += 1;
  const expected = "Basic " + Buffer.from("gateway:s3cret").toString("base64");
  res.setHeader("content-type", "application/json");
  if (req.headers.authorization !== expected) {
    res.statusCode = 401;
    res.end(JSON.stringify({ error: "invalid_client" }));
    return;
  }
  res.end(JSON.stringify(opaque[req.body?.token] ?? { active: false }));
});
server.service.addRoute("GET", "/introspections", (req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ count: introspections }));
});
server.service.addRoute("GET", "/garbage-jwks", (req, res) => {
  res.setHeader("content-type", "application/json");
  res.end("{\"keys\": 7");
});

// The authorization code flow (and refresh) for a client signing in:
// tokens for the audience, for the subject `alice`, with the scope asked
// for at /authorize (the mock itself would say "dummy"). `GET /grants`
// counts the token requests of each grant type.
const granted = new Map();
const grants = { authorization_code: 0, refresh_token: 0 };
const grantKey = (body) =>
  body.grant_type === "authorization_code" ? body.code : body.refresh_token;
server.service.on("beforeAuthorizeRedirect", (redirect, req) => {
  granted.set(redirect.url.searchParams.get("code"), req.query.scope ?? "");
});
server.service.on("beforeTokenSigning", (token, req) => {
  const body = req.body ?? {};
  if (body.grant_type in grants) {
    Object.assign(token.payload, { aud: audience, sub: "alice", scope: granted.get(grantKey(body)) ?? "" });
  }
});
server.service.on("beforeResponse", (response, req) => {
  const body = req.body ?? {};
  if (body.grant_type in grants && response.statusCode === 200) {
    grants[body.grant_type] += 1;
    const scope = granted.get(grantKey(body)) ?? "";
    response.body.scope = scope;
    granted.set(response.body.refresh_token, scope);
  }
});
server.service.addRoute("GET", "/grants", (req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(grants));
});

console.log(JSON.stringify({ issuer, kid: key.kid, tokens }));
process.stdin.resume();
process.stdin.on("end", async () => {
  await server.stop();
  process.exit(0);
});
