'use strict';
// The benchmark's peer: the smallest server that speaks liveblog's contract on Node's
// socket.io package. Readers send `subscribe {article, since}` and get `change` events; the
// editor POSTs updates to the JSON API routes the benchmark uses. Stories live in memory.
const http = require('http');
const { Server } = require('socket.io');

const stories = new Map(); // slug -> {seq, changes}

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      try {
        resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {});
      } catch (error) {
        reject(error);
      }
    });
  });
}

let nextUpdateId = 1;

async function api(req, res, io) {
  const url = new URL(req.url, 'http://peer');
  if (url.pathname === '/api/articles' && req.method === 'GET') {
    return json(res, 200, { articles: [...stories.keys()].map((slug) => ({ slug })) });
  }
  if (url.pathname === '/api/articles' && req.method === 'POST') {
    const { slug, title } = await readBody(req);
    stories.set(slug, { seq: 0, changes: [] });
    return json(res, 201, { slug, title, seq: 0 });
  }
  const match = url.pathname.match(/^\/api\/articles\/([^/]+)\/updates$/);
  if (match && req.method === 'POST') {
    const story = stories.get(match[1]);
    if (!story) return json(res, 404, { error: 'no such story' });
    const { body } = await readBody(req);
    story.seq += 1;
    const update = {
      id: nextUpdateId++, headline: null, body, html: `<p>${body}</p>`, key_event: false,
      author: 'bench', published_at: new Date().toISOString(), edited_at: null, seq: story.seq,
    };
    const change = { article: match[1], seq: story.seq, type: 'created', update };
    story.changes.push(change);
    io.to(`article:${match[1]}`).emit('change', change);
    return json(res, 201, update);
  }
  return json(res, 404, { error: 'not found' });
}

const httpServer = http.createServer();
const io = new Server(httpServer, { serveClient: false });
httpServer.on('request', (req, res) => {
  if (req.url.startsWith('/socket.io/')) return; // answered by socket.io's own listener
  api(req, res, io).catch(() => json(res, 400, { error: 'bad request' }));
});

io.on('connection', (socket) => {
  socket.on('subscribe', (data, ack) => {
    const story = data && stories.get(data.article);
    if (typeof ack !== 'function') return;
    if (!story) return ack({ ok: false, error: 'no such story', reload: false });
    socket.join(`article:${data.article}`);
    const since = Number.isInteger(data.since) ? data.since : story.seq;
    for (const change of story.changes.slice(since)) socket.emit('change', change);
    ack({ ok: true, seq: story.seq });
  });
});

const port = Number(process.env.PORT || 5000);
httpServer.listen({ port, host: process.env.HOST || '127.0.0.1', backlog: 2048 }, () => {
  console.log(`peer on http://127.0.0.1:${port}`);
});
process.on('SIGTERM', () => process.exit(0));
