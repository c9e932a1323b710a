// The BullMQ peer of the pipeline benchmark: story -> images -> video as three chained queues.
//
// Each stage's worker does the same bookkeeping as ours with instant generators (the images
// stage reports progress as ours does, at most twice a second), then adds the next stage's
// job before it returns.
// Timing matches the DeepFlix side: a stage "finished" when its worker's work was done (before
// the result is recorded), the next stage "started" when BullMQ moved its job to active
// (job.processedOn). Prints one JSON object on stdout.
//
// usage: node chain.mjs --port 6379 --n 2000 --concurrency 8 --scenes 6 [--rate 10] [--artifacts DIR]

import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

// With --artifacts DIR each stage reads its inputs and writes the same artifacts as our
// instant generators (story.json, one small PNG per scene, movie.mp4, poster.png,
// captions.vtt), each written beside and renamed into place like our artifact store.
const PNG = Buffer.alloc(120, 7);
const PROGRESS_INTERVAL_MS = 500;
function put(dir, name, data) {
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  writeFileSync(tmp, data);
  renameSync(tmp, join(dir, name));
}
function stageFiles(root, k, movie, scenes) {
  const dir = join(root, String(movie));
  if (k === 0) {
    mkdirSync(dir, { recursive: true });
    const story = { movie, scenes: Array.from({ length: scenes }, (_, i) => `scene ${i + 1}`) };
    put(dir, "story.json", JSON.stringify(story, null, 2));
  } else if (k === 1) {
    JSON.parse(readFileSync(join(dir, "story.json"), "utf8"));
    for (let s = 1; s <= scenes; s++) put(dir, `scene-${String(s).padStart(2, "0")}.png`, PNG);
  } else {
    readFileSync(join(dir, "story.json"));
    for (let s = 1; s <= scenes; s++) readFileSync(join(dir, `scene-${String(s).padStart(2, "0")}.png`));
    put(dir, "movie.mp4", PNG);
    put(dir, "poster.png", PNG);
    put(dir, "captions.vtt", "WEBVTT\n");
  }
}

function args() {
  const out = { port: 6379, n: 100, concurrency: 8, scenes: 6, rate: 0, timeout: 600, artifacts: "" };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in out)) throw new Error(`unknown option ${argv[i]}`);
    out[key] = key === "artifacts" ? argv[i + 1] : Number(argv[i + 1]);
  }
  return out;
}

async function main() {
  const opt = args();
  const connection = { host: "127.0.0.1", port: opt.port, maxRetriesPerRequest: null };
  const admin = new IORedis(connection);
  await admin.flushall();
  const appendonly = await admin.config("GET", "appendonly");
  const appendfsync = await admin.config("GET", "appendfsync");
  const prefix = `bench${Date.now()}`;
  const names = ["story", "images", "video"];
  // Retries like ours: 3 attempts with exponential backoff from 1 s. Completed jobs are kept,
  // as our movie documents are.
  const jobOpts = { attempts: 3, backoff: { type: "exponential", delay: 1000 } };
  const queues = names.map((name) => new Queue(name, { connection, prefix }));
  const hops = [[], []];
  const created = new Array(opt.n);
  const finished = new Array(opt.n);
  let done = 0;
  let resolveAll;
  const allDone = new Promise((resolve) => {
    resolveAll = resolve;
  });

  const workers = names.map(
    (name, k) =>
      new Worker(
        name,
        async (job) => {
          const { movie, prevFinished } = job.data;
          if (k > 0) hops[k - 1].push(job.processedOn - prevFinished);
          if (opt.artifacts) stageFiles(opt.artifacts, k, movie, opt.scenes);
          if (k === 1) {
            // The same progress policy as ours (stages/runner.py): at most one report per
            // 0.5 s of a stage's work, none before the first 0.5 s has passed.
            let last = Date.now();
            for (let s = 1; s <= opt.scenes; s++) {
              if (Date.now() - last >= PROGRESS_INTERVAL_MS) {
                last = Date.now();
                await job.updateProgress(Math.floor((s * 100) / opt.scenes));
              }
            }
          }
          const at = Date.now();
          if (k < names.length - 1) {
            await queues[k + 1].add("run", { movie, prevFinished: at }, jobOpts);
          } else {
            finished[movie] = at;
            done += 1;
            if (done === opt.n) resolveAll();
          }
          return null;
        },
        { connection, prefix, concurrency: opt.concurrency },
      ),
  );
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  await Promise.all(queues.map((q) => q.waitUntilReady()));

  // Movies are submitted one at a time, each add acknowledged before the next, like our
  // side's sequence of create() calls; the workers run meanwhile. --rate paces submissions.
  const t0 = Date.now();
  for (let i = 0; i < opt.n; i++) {
    if (opt.rate > 0) {
      const wait = t0 + (i * 1000) / opt.rate - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    created[i] = Date.now();
    await queues[0].add("run", { movie: i, prevFinished: created[i] }, jobOpts);
  }
  const submitted = Date.now();
  const timer = setTimeout(() => resolveAll("timeout"), opt.timeout * 1000);
  const outcome = await allDone;
  clearTimeout(timer);

  await Promise.all(workers.map((w) => w.close()));
  const counts = await Promise.all(queues.map((q) => q.getJobCounts("completed", "failed")));
  await Promise.all(queues.map((q) => q.close()));
  await admin.quit();

  const first = Math.min(...created);
  const last = Math.max(...finished.filter((x) => x !== undefined));
  process.stdout.write(
    JSON.stringify({
      n: opt.n,
      completed: done,
      timed_out: outcome === "timeout",
      failed: counts.reduce((a, c) => a + (c.failed || 0), 0),
      completed_jobs: counts.map((c) => c.completed || 0),
      submit_s: (submitted - first) / 1000,
      elapsed_s: (last - first) / 1000,
      movies_per_s: done / ((last - first) / 1000),
      hops_ms: hops,
      durability: { appendonly: appendonly[1], appendfsync: appendfsync[1] },
      artifacts: Boolean(opt.artifacts),
      versions: { node: process.version },
    }) + "\n",
  );
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
