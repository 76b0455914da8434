// bench.frameworks' BullMQ side: a Worker of concurrency 50 with a no-op processor, started first; then the jobs are
// added (Queue.add, up to 100 in flight) and the run ends when the worker has completed them all. Prints one JSON
// line: {"enqueue_seconds": ..., "seconds": ...} from the first add. Usage: node bullmq_bench.js <port> <jobs>
// (NODE_PATH=tests/frameworks/node/node_modules).
"use strict";
const { Queue, Worker } = require("bullmq");

async function main() {
  const port = Number(process.argv[2]);
  const jobs = Number(process.argv[3]);
  const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
  const queue = new Queue("bench", { connection });
  let completed = 0;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const worker = new Worker("bench", async () => {}, { connection, concurrency: 50 });
  worker.on("completed", () => { completed += 1; if (completed === jobs) finish(); });
  await worker.waitUntilReady();
  const started = process.hrtime.bigint();
  for (let sent = 0; sent < jobs; sent += 100) {
    const batch = [];
    for (let i = sent; i < Math.min(jobs, sent + 100); i++) batch.push(queue.add("noop", { i }));
    await Promise.all(batch);
  }
  const enqueued = process.hrtime.bigint();
  await finished;
  const done = process.hrtime.bigint();
  console.log(JSON.stringify({
    enqueue_seconds: Number(enqueued - started) / 1e9, seconds: Number(done - started) / 1e9,
  }));
  await worker.close();
  await queue.close();
}

main().then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });
