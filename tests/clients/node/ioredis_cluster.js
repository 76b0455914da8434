"use strict";
// ioredis's Cluster client over respq nodes in cluster mode, from one startup node: spreads list queues and streams
// with a consumer group, drains them with BLPOP and XREADGROUP, and prints a JSON summary of what it read.
// Usage: node ioredis_cluster.js PORT QUEUES STREAMS [WATCHDOG_MS]

const Redis = require("ioredis");

const WATCHDOG_MS = Number(process.argv[5] || 60_000); // larger for the long run's sizes

async function main() {
  const [port, queues, streams] = process.argv.slice(2).map(Number);
  const cluster = new Redis.Cluster([{ host: "127.0.0.1", port }], {
    redisOptions: { commandTimeout: 10_000, maxRetriesPerRequest: 0 },
    clusterRetryStrategy: () => null,
  });
  cluster.on("error", () => {});
  const summary = { ok: false, nodes: 0, popped: [], read: [] };
  try {
    await new Promise((resolve, reject) => {
      cluster.once("ready", resolve);
      cluster.once("end", () => reject(new Error("cluster connection ended")));
    });
    summary.nodes = cluster.nodes("master").length;
    for (let i = 0; i < queues; i += 1) await cluster.rpush(`iq:${i}`, `${i}:a`, `${i}:b`);
    for (let i = 0; i < streams; i += 1) {
      await cluster.xgroup("CREATE", `is:${i}`, "g", "0", "MKSTREAM");
      await cluster.xadd(`is:${i}`, "*", "n", String(i));
    }
    for (let i = 0; i < queues; i += 1) {
      for (let n = 0; n < 2; n += 1) summary.popped.push((await cluster.blpop(`iq:${i}`, 1))[1]);
    }
    for (let i = 0; i < streams; i += 1) {
      const reply = await cluster.xreadgroup("GROUP", "g", "c", "COUNT", 10, "BLOCK", 1000, "STREAMS", `is:${i}`, ">");
      for (const [, entries] of reply || []) {
        for (const [id, fields] of entries) {
          summary.read.push(Number(fields[1]));
          await cluster.xack(`is:${i}`, "g", id);
        }
      }
    }
    summary.ok = true;
  } catch (error) {
    summary.error = error instanceof Error ? `${error.message}\n${error.stack}` : String(error);
  } finally {
    cluster.disconnect();
  }
  // Exit once the summary is written: a pipe takes 64 KiB at once and process.exit() drops the rest.
  process.stdout.write(`${JSON.stringify(summary)}\n`, () => process.exit(summary.ok ? 0 : 1));
}

setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: `watchdog: not finished after ${WATCHDOG_MS} ms` }));
  process.exit(1);
}, WATCHDOG_MS).unref();
main();
