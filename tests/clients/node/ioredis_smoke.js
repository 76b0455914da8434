"use strict";
// ioredis against a server on 127.0.0.1: prints a JSON summary, exits non-zero on any mismatch.
// ioredis speaks RESP2 only; its ready check is a bare INFO whose `loading:` field it reads.

const assert = require("node:assert/strict");
const Redis = require("ioredis");
const { version } = require("ioredis/package.json");
const { parseArgs, runChecks, waitFor, withTimeout } = require("./harness");

const options = parseArgs(process.argv.slice(2));
const openClients = [];

async function connect(extra = {}) {
  const client = new Redis({
    host: "127.0.0.1",
    port: options.port,
    lazyConnect: true,
    connectTimeout: 5000,
    commandTimeout: 10_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    ...(options.tls ? { tls: options.tls } : {}),
    ...extra,
  });
  client.on("error", () => {}); // failures surface as rejected commands; avoid ioredis's unhandled-error log
  openClients.push(client);
  await client.connect();
  assert.equal(client.status, "ready");
  return client;
}

async function checkHandshakeWithName() {
  const client = await connect({ connectionName: "ioredis-smoke" });
  assert.equal(await client.client("GETNAME"), "ioredis-smoke");
  const id = await client.client("ID");
  assert.ok(Number.isInteger(id) && id > 0, `CLIENT ID ${id}`);
}

async function checkPing() {
  const client = await connect();
  assert.equal(await client.ping(), "PONG");
  assert.equal(await client.ping("with message"), "with message");
  assert.equal(await client.echo("echoed"), "echoed");
}

async function checkMultiExec() {
  const client = await connect();
  assert.deepEqual(await client.multi().ping().echo("queued").exec(), [[null, "PONG"], [null, "queued"]]);
}

async function checkClientSetName() {
  const client = await connect();
  assert.equal(await client.client("GETNAME"), null);
  assert.equal(await client.client("SETNAME", "renamed-by-ioredis"), "OK");
  assert.equal(await client.client("GETNAME"), "renamed-by-ioredis");
}

async function checkSubscribePublish() {
  const channel = "smoke.ioredis";
  const subscriber = await connect();
  const publisher = await connect();
  const received = new Promise((resolve) => subscriber.on("message", (from, message) => resolve([from, message])));
  assert.equal(await subscriber.subscribe(channel), 1);
  await waitFor("the subscription", async () => (await publisher.pubsub("NUMSUB", channel))[1] === 1);
  assert.equal(await publisher.publish(channel, "hello subscribers"), 1);
  assert.deepEqual(await withTimeout(received, "the published message"), [channel, "hello subscribers"]);
}

async function checkBrpop() {
  const key = "smoke:ioredis:list";
  const client = await connect();
  const blocker = await connect();
  await client.del(key); // the same server may be shared by several runs
  assert.equal(await client.lpush(key, "first", "second"), 2);
  assert.deepEqual(await client.brpop(key, 1), [key, "first"]);
  assert.deepEqual(await client.brpop(key, 1), [key, "second"]);
  assert.equal(await client.brpop(key, 0.05), null);
  // Whether the push lands before or after the pop blocks, the popper gets exactly this element.
  const popped = blocker.brpop(key, 5);
  assert.equal(await client.lpush(key, "woken"), 1);
  assert.deepEqual(await popped, [key, "woken"]);
}

async function checkXreadgroup() {
  const stream = "smoke:ioredis:stream";
  const client = await connect();
  await client.del(stream);
  assert.equal(await client.xgroup("CREATE", stream, "workers", "$", "MKSTREAM"), "OK");
  await assert.rejects(client.xgroup("CREATE", stream, "workers", "$"), {
    message: "BUSYGROUP Consumer Group name already exists",
  });
  const id = await client.xadd(stream, "*", "job", "resize", "size", "64");
  assert.match(id, /^\d+-\d+$/);
  const delivered = await client.xreadgroup("GROUP", "workers", "worker-1", "COUNT", 10, "STREAMS", stream, ">");
  assert.deepEqual(delivered, [[stream, [[id, ["job", "resize", "size", "64"]]]]]);
  assert.equal(await client.xack(stream, "workers", id), 1);
  assert.equal(await client.xreadgroup("GROUP", "workers", "worker-1", "STREAMS", stream, ">"), null);
}

const checks = [
  ["handshake_with_name", checkHandshakeWithName],
  ["ping_echo", checkPing],
  ["multi_exec", checkMultiExec],
  ["client_setname", checkClientSetName],
  ["subscribe_publish", checkSubscribePublish],
];
if (options.lists) checks.push(["brpop", checkBrpop]);
if (options.streams) checks.push(["xreadgroup", checkXreadgroup]);

runChecks("ioredis", version, options, [
  ...checks,
  ["close_connections", async () => Promise.all(openClients.map((client) => client.quit().catch(() => null)))],
]);
